image "child" {
  from       = image.base
  descripton = "typo"
  checks     = ["checks/child.yaml"]
}
