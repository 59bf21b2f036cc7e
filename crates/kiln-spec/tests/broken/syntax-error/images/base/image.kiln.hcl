image "base" {
  from     = source.debian.bookworm
  packages = ["openssh-server"
  checks   = ["checks/base.yaml"]
}
