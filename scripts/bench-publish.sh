#!/usr/bin/env bash
# Publish benchmark: the EBS direct upload of the example base image's raw disk to moto on
# loopback, one block in flight against sixteen, and the share of all-zero blocks not sent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/host-deps.sh base builder publish
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/kiln/target}"
cargo build --release --quiet -p kiln-cli
kiln="$CARGO_TARGET_DIR/release/kiln"
work=$(mktemp -d /var/tmp/kiln-bench-publish.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r examples/factory "$work/factory"
rm -rf "$work/factory/.kiln"
echo "bench-publish: building base-debian12 (stage cache: ${KILN_CACHE_DIR:-/var/cache/kiln/stages})..." >&2
"$kiln" -q build base-debian12 --no-test --factory "$work/factory" >/dev/null
key=$("$kiln" cache ls | awk '$2 == "disk" && $3 == "base-debian12" { print $1; exit }')
disk=$(ls -d "${KILN_CACHE_DIR:-/var/cache/kiln/stages}/stages/$key"*/out/disk.raw)
KILN_BENCH_DISK="$disk" cargo bench --quiet -p kiln-publish --bench upload
