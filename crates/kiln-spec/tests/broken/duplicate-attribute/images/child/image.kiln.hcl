image "child" {
  from     = image.base
  packages = ["nginx"]
  packages = ["curl"]
}
