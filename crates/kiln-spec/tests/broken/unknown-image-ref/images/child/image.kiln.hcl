image "child" {
  from = image.base-debian13
}
