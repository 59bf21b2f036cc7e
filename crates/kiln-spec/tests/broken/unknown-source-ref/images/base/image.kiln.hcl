image "base" {
  from = source.debian.trixie
}
