#!/usr/bin/env bash
# Runs each fuzz target for FUZZ_SECONDS (default 30) seeded from real inputs: definitions from
# the example factory and the broken fixtures; dpkg status, OSV and tracker data from the scanner's
# test data; apk and Red Hat/Alpine OSV samples from fuzz/seeds. FUZZ_TARGETS picks a subset.
# Needs the nightly toolchain machines of this kind ship.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-30}
targets=${FUZZ_TARGETS:-definitions dpkg_status apk_installed osv}

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz: no nightly toolchain (cargo fuzz needs it); install it with rustup" >&2
  exit 1
fi
scripts/host-deps.sh fuzz

# The fuzz crate keeps its own target dir beside the workspace's.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/kiln/target}-fuzz"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
scan_data=crates/kiln-scan/tests/data/debian-security

# seeds TARGET: the files that start TARGET's corpus, one path per line.
seeds() {
  case "$1" in
    definitions)   find examples crates/kiln-spec/tests/broken -type f \( -name '*.hcl' -o -name '*.yaml' \) ;;
    dpkg_status)   echo "$scan_data/rootfs/var/lib/dpkg/status" ;;
    apk_installed) find fuzz/seeds/apk_installed -type f ;;
    osv)           find "$scan_data/osv" fuzz/seeds/osv -type f; echo "$scan_data/tracker.json" ;;
    *) echo "fuzz: unknown target $1" >&2; exit 2 ;;
  esac
}

for target in $targets; do
  corpus="$work/$target"
  mkdir -p "$corpus"
  seeds "$target" | while read -r f; do cp "$f" "$corpus/$(echo "$f" | tr '/' '_')"; done
  # Inputs earlier runs found interesting (kept out of git).
  if [ -d "fuzz/corpus/$target" ]; then cp "fuzz/corpus/$target"/* "$corpus/" 2>/dev/null || true; fi

  echo "fuzz: $target for ${seconds}s"
  log="$work/$target.log"
  status=0
  (cd fuzz && cargo +nightly fuzz run "$target" "$corpus" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1) >"$log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$log" >&2
    echo "fuzz: $target FAILED (status $status); the crashing input is under fuzz/artifacts/$target/" >&2
    exit "$status"
  fi
  grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+ +DONE' "$log" || true
  echo "fuzz: $target: no crash in ${seconds}s"
done
