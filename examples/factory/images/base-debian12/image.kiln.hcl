image "base-debian12" {
  description = "CIS level 1 hardened Debian 12"
  from        = source.debian.bookworm
  packages    = ["openssh-server", "qemu-guest-agent", "rsyslog", "auditd", "systemd-timesyncd", "libpam-pwquality"]

  disk {
    size = "4GiB"
    boot = "uefi"
  }

  provisioner "shell" { script = "harden.sh" }
  provisioner "file" {
    source      = "files/sshd-hardening.conf"
    destination = "/etc/ssh/sshd_config.d/10-hardening.conf"
    mode        = "0600"
  }

  checks  = ["checks/cis-level1.yaml"]
  formats = ["raw", "qcow2", "vhd", "vmdk"]
  labels  = { owner = "platform", cis_level = "1" }
}
