factory {
  name     = "fixture"
  channels = ["dev", "production"]
}

source "debian" "bookworm" {
  suite = "bookworm"
}
