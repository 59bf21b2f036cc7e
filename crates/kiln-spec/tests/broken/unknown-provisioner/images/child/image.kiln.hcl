image "child" {
  from = image.base
  provisioner "ansible" {
    playbook = "site.yml"
  }
}
