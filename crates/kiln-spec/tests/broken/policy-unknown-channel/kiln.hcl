factory {
  name     = "fixture"
  channels = ["dev", "production"]
}

source "debian" "bookworm" {
  suite = "bookworm"
}

policy "prod" {
  require_tests = true
}
