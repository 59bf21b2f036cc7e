factory {
  name     = "fixture"
  channels = ["dev", "production"]
}

source "debian" "bookworm" {
  suite = "bookworm"
}

publish "aws" {
  regions        = ["us-east-1", "Frankfurt"]
  default_branch = "my branch"
}

publish "oracle" {
  regions = ["us-east-1"]
}

publish "azure" {
  regions         = ["westeurope", "North Europe"]
  subscription    = "not-a-guid"
  resource_group  = "rg-images"
  gallery         = "acme-images"
  storage_account = "acmeimages"
}

publish "gcp" {
  regions = ["eu", "us"]
  project = "acme-images"
}
