image "child" {
  from    = image.base
  channel = "staging"
}
