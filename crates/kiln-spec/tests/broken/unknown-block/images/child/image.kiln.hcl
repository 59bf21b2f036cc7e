image "child" {
  from = image.base
  provisoner "shell" {
    inline = ["true"]
  }
}
