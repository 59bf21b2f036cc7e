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
