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

# What `kiln reap` may delete. Versions on a channel, ancestors of live versions and versions
# younger than min_age are always kept.
retention {
  keep_last    = 10     # newest completed versions kept per bucket
  min_age      = "7d"
  failed_grace = "3d"   # failed builds' artifacts are deleted after this
}

# Registry events as signed JSON POSTs (HMAC-SHA256 in X-Kiln-Signature-256). The secret comes
# from the environment, never from this file. `kiln notify status` shows pending and dead ones.
# notify "webhook" "platform-chat" {
#   url        = "https://hooks.example.internal/kiln"
#   secret_env = "KILN_WEBHOOK_SECRET"
#   events     = ["version.failed", "version.promoted", "version.revoked", "version.outdated"]
# }

# Where `kiln publish` (and `kiln build`, after promoting) shares images; accounts.yaml says with
# whom, per channel. The first region receives the upload, the others copies. Nothing is shared
# from other branches than default_branch.
# publish "aws" {
#   regions        = ["us-east-1", "eu-west-1"]
#   default_branch = "main"
#   tags           = { team = "platform" }
#   channel "production" {            # versions on production also get these
#     regions = ["ap-southeast-2"]
#     tags    = { tier = "prod" }
#   }
# }
# Azure: the VHD goes to a page blob, then a Compute Gallery version of the image definition
# named after the bucket (which must exist), replicated to every region.
# publish "azure" {
#   regions         = ["westeurope", "northeurope"]
#   subscription    = "0f8fad5b-d9cb-469f-a165-70867728950e"
#   resource_group  = "rg-images"
#   gallery         = "acme_images"
#   storage_account = "acmeimages"
#   default_branch  = "main"
# }
# GCP: the gce tar.gz goes to a Cloud Storage bucket, then a global image stored in one location.
# publish "gcp" {
#   regions        = ["eu"]
#   project        = "acme-images"
#   bucket         = "acme-kiln-uploads"
#   default_branch = "main"
# }

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
