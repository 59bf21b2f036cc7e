#!/usr/bin/env bash
# Build benchmark: kiln against mkosi (the peer named in the builder issue), same machine, same
# run, equivalent image (bookworm, the example base image's packages and hardening, a bootable raw
# GPT disk). Prints cold, warm-after-a-provisioner-edit and child-on-cached-parent times, and the
# ratio mkosi/kiln (above 1 means kiln is faster).
#
# Installs mkosi from backports on first use: that also moves the host's systemd to the backports
# version (mkosi needs it), which is why this is behind `make bench` and not `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/host-deps.sh base builder bench
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/kiln/target}"
cargo build --release --quiet -p kiln-cli
kiln="$CARGO_TARGET_DIR/release/kiln"

work=$(mktemp -d /var/tmp/kiln-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# ---- kiln -------------------------------------------------------------------------------------
"$kiln" init "$work/factory" >/dev/null
f="$work/factory"
# The equivalent of mkosi's output: one raw disk.
sed -i 's/formats = \["raw", "qcow2", "vhd", "vmdk"\]/formats = ["raw"]/' "$f/images/base-debian12/image.kiln.hcl"
sed -i 's/labels = { owner = "web-team" }/labels = { owner = "web-team" }\n  formats = ["raw"]/' "$f/images/app-web/image.kiln.hcl"
export KILN_CACHE_DIR="$work/kiln-cache"

echo "kiln: cold build of base-debian12 (empty stage cache)..." >&2
t0=$(now); "$kiln" -q build base-debian12 --no-test --factory "$f" >/dev/null 2>"$work/kiln.log" || { cat "$work/kiln.log"; exit 1; }; t1=$(now)
k_cold=$(secs "$t0" "$t1")
echo "kiln: rebuild with no change..." >&2
t0=$(now); "$kiln" -q build base-debian12 --no-test --factory "$f" >/dev/null 2>&1; t1=$(now)
k_noop=$(secs "$t0" "$t1")
echo "kiln: warm rebuild after a provisioner edit..." >&2
echo 'echo "# bench edit" >> /etc/motd' >> "$f/images/base-debian12/harden.sh"
t0=$(now); "$kiln" -q build base-debian12 --no-test --factory "$f" >/dev/null 2>&1; t1=$(now)
k_warm=$(secs "$t0" "$t1")
echo "kiln: child app-web on the cached parent..." >&2
t0=$(now); "$kiln" -q build app-web --no-test --factory "$f" >/dev/null 2>&1; t1=$(now)
k_child=$(secs "$t0" "$t1")

# ---- mkosi ------------------------------------------------------------------------------------
# The mirror comes from the host's apt sources, read now (never written into the repository).
mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
m="$work/mkosi"
mkdir -p "$m/mkosi.cache" "$m/mkosi.extra/etc/ssh/sshd_config.d"
cp "$f/images/base-debian12/files/sshd-hardening.conf" "$m/mkosi.extra/etc/ssh/sshd_config.d/10-hardening.conf"
chmod 0600 "$m/mkosi.extra/etc/ssh/sshd_config.d/10-hardening.conf"
cp "$root/examples/factory/images/base-debian12/harden.sh" "$m/mkosi.postinst.chroot"
chmod +x "$m/mkosi.postinst.chroot"
cat > "$m/mkosi.conf" <<CONF
[Distribution]
Distribution=debian
Release=bookworm
LocalMirror=$mirror
RepositoryKeyCheck=no

[Output]
Format=disk
ImageId=base
Incremental=yes
CacheDirectory=mkosi.cache

[Content]
Bootable=yes
Bootloader=systemd-boot
Packages=linux-image-cloud-amd64,systemd,systemd-sysv,udev,dbus,openssh-server,qemu-guest-agent,
         rsyslog,auditd,initramfs-tools,procps,kmod,e2fsprogs,zstd
CONF
mk() { (cd "$m" && mkosi -f "$@" build) >"$work/mkosi.log" 2>&1 || { tail -40 "$work/mkosi.log"; exit 1; }; }
echo "mkosi: cold build..." >&2
t0=$(now); mk; t1=$(now); m_cold=$(secs "$t0" "$t1")
echo "mkosi: rebuild with no change..." >&2
t0=$(now); mk; t1=$(now); m_noop=$(secs "$t0" "$t1")
echo "mkosi: warm rebuild after a postinst edit..." >&2
echo 'echo "# bench edit" >> /etc/motd' >> "$m/mkosi.postinst.chroot"
t0=$(now); mk; t1=$(now); m_warm=$(secs "$t0" "$t1")
echo "mkosi: the child (base + nginx; mkosi has no parent images, so an incremental build)..." >&2
sed -i 's/^         rsyslog,auditd/         nginx,rsyslog,auditd/' "$m/mkosi.conf"
t0=$(now); mk; t1=$(now); m_child=$(secs "$t0" "$t1")

ratio() { awk -v k="$1" -v m="$2" 'BEGIN { printf "%.1fx", m / k }'; }
printf '\n%-44s %9s %9s %14s\n' "build (bookworm, bootable raw disk)" "kiln s" "mkosi s" "mkosi/kiln"
printf '%-44s %9s %9s %14s\n' "cold (empty caches)" "$k_cold" "$m_cold" "$(ratio "$k_cold" "$m_cold")"
printf '%-44s %9s %9s %14s\n' "warm, after a provisioner/postinst edit" "$k_warm" "$m_warm" "$(ratio "$k_warm" "$m_warm")"
printf '%-44s %9s %9s %14s\n' "child on the cached parent (kiln) / +nginx" "$k_child" "$m_child" "$(ratio "$k_child" "$m_child")"
printf '%-44s %9s %9s %14s\n' "rebuild with no change" "$k_noop" "$m_noop" "$(ratio "$k_noop" "$m_noop")"
printf '\ngoals (kiln): cold <= 120 s, warm <= 20 s, child <= 20 s; %s, %s\n' "$(nproc) cores" "$(date -u +%Y-%m-%dT%H:%MZ)"
