image "child" {
  from = image.base
  provisioner "file" {
    source      = "checks/child.yaml"
    destination = "/etc/kiln/child.yaml"
    mode        = "0999"
  }
}
