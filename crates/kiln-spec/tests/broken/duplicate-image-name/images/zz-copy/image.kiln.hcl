image "base" {
  from = source.debian.bookworm
}
