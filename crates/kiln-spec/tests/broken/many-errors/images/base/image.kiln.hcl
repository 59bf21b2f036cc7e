image "base" {
  from = source.debian.bookworm
  disk {
    size = "4GB"
  }
  formats = ["iso"]
}
