image "base" {
  from = source.debian.bookworm
  disk {
    size = "2GiB"
    boot = "efi"
  }
}
