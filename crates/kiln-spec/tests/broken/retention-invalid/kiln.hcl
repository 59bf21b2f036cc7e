factory {
  name     = "fixture"
  channels = ["dev", "production"]
}

source "debian" "bookworm" {
  suite = "bookworm"
}

retention {
  keep_last    = 0
  min_age      = "7 days"
  failed_grace = "3d"
}
