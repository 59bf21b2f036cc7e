image "child" {
  from   = image.base
  checks = ["checks/child.yaml", "checks/missing.yaml"]
}
