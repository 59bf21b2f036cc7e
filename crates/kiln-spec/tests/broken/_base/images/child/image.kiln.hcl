image "child" {
  from     = image.base
  packages = ["nginx"]
  checks   = ["checks/child.yaml"]
}
