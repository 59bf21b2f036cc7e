factory {
  name     = "fixture"
  channels = ["dev", "production"]
}

source "debian" "bookworm" {
  suite = "bookworm"
}

notify "webhook" "chat" {
  url        = "ftp://hooks.invalid/kiln"
  secret_env = "s3cr3t-value"
  events     = ["version.completed", "version.exploded"]
}
