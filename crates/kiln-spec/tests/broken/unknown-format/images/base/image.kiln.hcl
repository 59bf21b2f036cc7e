image "base" {
  from    = source.debian.bookworm
  formats = ["raw", "iso", "qcow2"]
}
