factory {
  name     = "fixture"
  channels = ["dev", "production"]
}

source "debian" "bookworm" {
  suite = "bookworm"
}

publish "aws" {
  regions = ["us-east-1"]
  channel "staging" {
    regions = ["eu-west-1"]
  }
  channel "production" {
    regions = ["Sydney"]
    tags    = { tier = "prod" }
  }
}

publish "gcp" {
  regions = ["eu"]
  project = "acme-images"
  bucket  = "acme-kiln-uploads"
  channel "production" {
    regions = ["us"]
  }
}
