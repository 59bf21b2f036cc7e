#!/bin/sh
# CIS Debian 12 level 1 hardening for the base image. Runs inside the image tree.
set -eu

# 1.1.1 Disable unused filesystem modules.
for fs in cramfs freevxfs hfs hfsplus jffs2 udf; do
  printf 'install %s /bin/false\nblacklist %s\n' "$fs" "$fs" > "/etc/modprobe.d/cis-$fs.conf"
done

# 1.5 / 3.x Kernel and network parameters.
cat > /etc/sysctl.d/60-cis.conf <<'SYSCTL'
kernel.randomize_va_space = 2
kernel.yama.ptrace_scope = 1
fs.suid_dumpable = 0
net.ipv4.ip_forward = 0
net.ipv4.conf.all.send_redirects = 0
net.ipv4.conf.default.send_redirects = 0
net.ipv4.conf.all.accept_redirects = 0
net.ipv4.conf.default.accept_redirects = 0
net.ipv4.conf.all.accept_source_route = 0
net.ipv4.conf.all.log_martians = 1
net.ipv4.icmp_echo_ignore_broadcasts = 1
net.ipv4.tcp_syncookies = 1
SYSCTL

# 5.4 Default umask and password ageing.
sed -i 's/^UMASK.*/UMASK\t\t027/' /etc/login.defs
sed -i 's/^PASS_MAX_DAYS.*/PASS_MAX_DAYS\t365/' /etc/login.defs

# 6.1 Permissions of sensitive files.
chmod 0640 /etc/shadow /etc/gshadow
chown root:shadow /etc/shadow /etc/gshadow
chmod 0644 /etc/passwd /etc/group

# 4.1 Audit: start auditd at boot.
systemctl enable auditd.service
