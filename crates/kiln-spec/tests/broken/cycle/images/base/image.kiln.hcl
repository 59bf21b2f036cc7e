image "base" {
  from = image.child
}
