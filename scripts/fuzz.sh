#!/usr/bin/env bash
# Runs the definition-parser fuzz target for FUZZ_SECONDS (default 30), seeded from the example
# factory and the broken fixtures. Needs the nightly toolchain machines of this kind ship.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-30}

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz: no nightly toolchain (cargo fuzz needs it); install it with rustup" >&2
  exit 1
fi
scripts/host-deps.sh fuzz

# The fuzz crate keeps its own target dir beside the workspace's.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/kiln/target}-fuzz"
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
find examples crates/kiln-spec/tests/broken -type f \( -name '*.hcl' -o -name '*.yaml' \) |
  while read -r f; do cp "$f" "$corpus/$(echo "$f" | tr '/' '_')"; done
if [ -d fuzz/corpus/definitions ]; then cp fuzz/corpus/definitions/* "$corpus/" 2>/dev/null || true; fi

echo "fuzz: definitions for ${seconds}s"
log="$corpus.log"
status=0
(cd fuzz && cargo +nightly fuzz run definitions "$corpus" -- \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1) >"$log" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  tail -n 60 "$log" >&2
  echo "fuzz: FAILED (status $status); the crashing input is under fuzz/artifacts/definitions/" >&2
  rm -f "$log"
  exit "$status"
fi
grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+ +DONE' "$log" || true
rm -f "$log"
echo "fuzz: no crash in ${seconds}s"
