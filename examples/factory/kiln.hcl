# The example factory: a CIS-hardened Debian 12 base and a web server built on it.

factory {
  name     = "acme"
  channels = ["dev", "test", "production"]   # promotion order; "latest" is managed by Kiln
}

registry { url = "sqlite://.kiln/registry.db" }
store    { url = "file://.kiln/artifacts" }

source "debian" "bookworm" {
  suite      = "bookworm"
  components = ["main"]
  # mirror: defaults to the build host's apt sources; snapshot = "20250520T000000Z" pins it
}

policy "test" {
  require_tests = true
}

policy "production" {
  require_tests    = true
  max_severity     = "high"      # no unfixed critical findings
  forbid_secrets   = true
  require_approval = true
  approver_role    = "security"
}
