image "base" {
  from     = source.debian.bookworm
  packages = ["openssh-server"]

  disk {
    size = "4GiB"
  }

  provisioner "shell" { script = "setup.sh" }
  checks = ["checks/base.yaml"]
}
