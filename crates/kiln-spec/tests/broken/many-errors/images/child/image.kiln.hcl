image "child" {
  from   = image.nope
  colour = "blue"
}
