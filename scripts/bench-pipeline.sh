#!/usr/bin/env bash
# Pipeline benchmark: the main job as users run it, boot tests included.
# - cold `make demo`: empty stage cache, fresh registry, the example factory (base + child):
#   bootstrap, provision, seal, disk, all exports, boot and check both, record, promote;
# - warm: one provisioner edit in the base, then `kiln build --all` (base and child rebuilt and
#   booted again);
# - base alone after an edit, and the child alone on the cached parent (each with its boot test).
# Prints the figures against the goals, and whether QEMU ran with KVM or TCG.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/host-deps.sh base builder
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/kiln/target}"
cargo build --quiet -p kiln-cli
kiln="$CARGO_TARGET_DIR/debug/kiln"

work=$(mktemp -d /var/tmp/kiln-bench-pipeline.XXXXXX)
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
run() { "$@" >>"$work/log" 2>&1 || { tail -40 "$work/log"; exit 1; }; }

f="$work/factory"
"$kiln" init "$f" >/dev/null
export KILN_CACHE_DIR="$work/cache"
if [ -e /sys/module/kvm_intel ] || [ -e /sys/module/kvm_amd ]; then accel=KVM; else accel="TCG (no kvm_intel/kvm_amd loaded)"; fi

echo "cold make demo (empty stage cache, fresh registry)..." >&2
t0=$(now); run make --no-print-directory demo FACTORY="$f"; t1=$(now)
cold=$(secs "$t0" "$t1")

echo "warm: one provisioner edit in the base, kiln build --all (base + child, both booted)..." >&2
echo 'echo "# bench edit 1" >> /etc/motd' >> "$f/images/base-debian12/harden.sh"
t0=$(now); run "$kiln" build --all --factory "$f"; t1=$(now)
warm_all=$(secs "$t0" "$t1")

echo "warm: the base alone after another edit (booted)..." >&2
echo 'echo "# bench edit 2" >> /etc/motd' >> "$f/images/base-debian12/harden.sh"
t0=$(now); run "$kiln" build base-debian12 --no-cascade --factory "$f"; t1=$(now)
warm_base=$(secs "$t0" "$t1")

echo "child alone on the cached parent after a child edit (booted)..." >&2
sed -i 's/inline = \["systemctl enable nginx"\]/inline = ["systemctl enable nginx", "echo bench > \/etc\/kiln-bench"]/' "$f/images/app-web/image.kiln.hcl"
# The example child tracks production, which needs a scan and an approval; here it tracks dev,
# where the base was promoted automatically, so it builds on that (cached) base tree.
sed -i 's/channel     = "production"/channel     = "dev"/' "$f/images/app-web/image.kiln.hcl"
t0=$(now); run "$kiln" build app-web --no-cascade --factory "$f"; t1=$(now)
child=$(secs "$t0" "$t1")

printf '\n%-58s %9s %9s\n' "pipeline (build + boot test + record), QEMU: $accel" "seconds" "goal"
printf '%-58s %9s %9s\n' "cold make demo (base + child, empty caches)" "$cold" "-"
printf '%-58s %9s %9s\n' "warm kiln build --all after a base provisioner edit" "$warm_all" "-"
printf '%-58s %9s %9s\n' "warm base alone after a provisioner edit" "$warm_base" "45"
printf '%-58s %9s %9s\n' "child alone on the cached parent" "$child" "40"
printf '(cold base incl. boot test goal: 180 s; the cold demo above builds and boots two images)\n'
printf '%s cores, %s\n' "$(nproc)" "$(date -u +%Y-%m-%dT%H:%MZ)"
