image "base" {
  from = source.debian.bookworm
  provisioner "shell" { script = "../../kiln.hcl" }
}
