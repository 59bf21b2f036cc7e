image "app-web" {
  description = "nginx on the hardened base"
  from        = image.base-debian12
  channel     = "production"   # which base version to build on
  packages    = ["nginx"]

  provisioner "shell" {
    inline = ["systemctl enable nginx"]
  }

  checks = ["checks/web.yaml"]
  labels = { owner = "web-team" }
}
