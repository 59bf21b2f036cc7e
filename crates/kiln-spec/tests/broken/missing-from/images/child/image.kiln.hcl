image "child" {
  packages = ["nginx"]
}
