image "child" {
  from        = image.base
  description = "built on ${var.base}"
}
