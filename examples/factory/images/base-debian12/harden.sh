#!/bin/sh
# CIS Debian Linux 12 Benchmark, level 1 (server) hardening for the base image.
# Runs inside the image tree while it is built; checks/cis-level1.yaml verifies every setting.
set -eu

# 1.1.1, 3.2: filesystem and network protocol modules nobody on a server needs.
for mod in cramfs freevxfs hfs hfsplus jffs2 udf usb-storage dccp sctp rds tipc; do
  printf 'install %s /bin/false\nblacklist %s\n' "$mod" "$mod" > "/etc/modprobe.d/cis-$mod.conf"
done

# 1.1.2: /tmp on its own tmpfs with nodev,nosuid.
cp /usr/share/systemd/tmp.mount /etc/systemd/system/tmp.mount
systemctl enable tmp.mount

# 1.5, 3.3: kernel and network parameters.
cat > /etc/sysctl.d/60-cis.conf <<'SYSCTL'
kernel.randomize_va_space = 2
kernel.yama.ptrace_scope = 1
kernel.dmesg_restrict = 1
fs.suid_dumpable = 0
net.ipv4.ip_forward = 0
net.ipv4.conf.all.send_redirects = 0
net.ipv4.conf.default.send_redirects = 0
net.ipv4.conf.all.accept_redirects = 0
net.ipv4.conf.default.accept_redirects = 0
net.ipv4.conf.all.secure_redirects = 0
net.ipv4.conf.all.accept_source_route = 0
net.ipv4.conf.default.accept_source_route = 0
net.ipv4.conf.all.log_martians = 1
net.ipv4.conf.all.rp_filter = 1
net.ipv4.icmp_echo_ignore_broadcasts = 1
net.ipv4.icmp_ignore_bogus_error_responses = 1
net.ipv4.tcp_syncookies = 1
net.ipv6.conf.all.accept_ra = 0
net.ipv6.conf.all.accept_redirects = 0
SYSCTL
# 1.5.3: no core dumps.
printf '* hard core 0\n' > /etc/security/limits.d/60-cis.conf

# 1.7: warning banners without system information.
for f in /etc/issue /etc/issue.net /etc/motd; do
  printf 'Authorized use only. All activity may be monitored and reported.\n' > "$f"
  chown root:root "$f"
  chmod 0644 "$f"
done

# 4.1: auditd, with rules for identity, time, privilege and login changes; logs are kept.
cat > /etc/audit/rules.d/50-cis.rules <<'RULES'
-w /etc/passwd -p wa -k identity
-w /etc/group -p wa -k identity
-w /etc/shadow -p wa -k identity
-w /etc/gshadow -p wa -k identity
-w /etc/sudoers -p wa -k scope
-w /etc/localtime -p wa -k time-change
-w /var/log/lastlog -p wa -k logins
-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change
RULES
sed -i 's/^max_log_file_action.*/max_log_file_action = keep_logs/' /etc/audit/auditd.conf
systemctl enable auditd.service

# 4.2: journald compresses and keeps logs.
mkdir -p /etc/systemd/journald.conf.d
printf '[Journal]\nCompress=yes\nStorage=persistent\n' > /etc/systemd/journald.conf.d/60-cis.conf

# 5.2.1: the SSH daemon's configuration is readable by root only.
chmod 0600 /etc/ssh/sshd_config

# 5.3, 5.4: password quality and ageing, default umask, idle shell timeout.
sed -i 's/^# *minlen.*/minlen = 14/; s/^# *minclass.*/minclass = 4/' /etc/security/pwquality.conf
sed -i 's/^UMASK.*/UMASK\t\t027/' /etc/login.defs
sed -i 's/^PASS_MAX_DAYS.*/PASS_MAX_DAYS\t365/' /etc/login.defs
sed -i 's/^PASS_MIN_DAYS.*/PASS_MIN_DAYS\t1/' /etc/login.defs
sed -i 's/^PASS_WARN_AGE.*/PASS_WARN_AGE\t7/' /etc/login.defs
printf 'readonly TMOUT=900\nexport TMOUT\n' > /etc/profile.d/60-cis-tmout.sh

# 6.1: permissions of the account databases.
chown root:root /etc/passwd /etc/group
chmod 0644 /etc/passwd /etc/group
chown root:shadow /etc/shadow /etc/gshadow
chmod 0640 /etc/shadow /etc/gshadow
