#!/usr/bin/env bash
# Server load benchmark: artifact lookups (GET /v1/buckets/B/channels/C/artifact, with a bearer
# token, as Terraform and deploy tools call it) against `kiln serve` on loopback with the SQLite
# registry, driven by wrk on the same 2-core machine. Goal: ≥ 20,000 req/s with p99 ≤ 5 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-server-lib.sh

scripts/host-deps.sh base server
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/kiln/target}"
cargo build --release --quiet -p kiln-cli
kiln="$CARGO_TARGET_DIR/release/kiln"
duration=${BENCH_SECONDS:-15}
connections=${BENCH_CONNECTIONS:-32}

work=$(mktemp -d /var/tmp/kiln-bench-server.XXXXXX)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$kiln" init "$work/f" >/dev/null
f="$work/f"
admin=$("$kiln" --factory "$f" token create bench-admin --role admin 2>/dev/null)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$kiln" --factory "$f" serve --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/v1/openapi.json" && break; sleep 0.1; done
url="http://127.0.0.1:$port"
consumer=$(seed_history "$url" "$admin")
lookup="$url$LOOKUP_PATH"
curl -fsS -H "Authorization: Bearer $consumer" "$lookup" >/dev/null
write_report_lua "$work/report.lua"
echo "bench-server: warming up..." >&2
wrk -t1 -c"$connections" -d3s -H "Authorization: Bearer $consumer" "$lookup" >/dev/null
echo "bench-server: ${duration}s of artifact lookups, $connections connections..." >&2
out=$(wrk -t1 -c"$connections" -d"${duration}s" --latency -s "$work/report.lua" -H "Authorization: Bearer $consumer" "$lookup")
read -r _ n rps p50 p99 errors <<<"$(grep '^RESULT' <<<"$out")"

echo
echo "Server benchmark ($(nproc) cores, wrk and kiln serve on the same machine, SQLite registry)"
printf '| %-34s | %-12s | %-12s |\n' measure kiln goal
printf '| %-34s | %-12s | %-12s |\n' --- --- ---
printf '| %-34s | %-12s | %-12s |\n' "artifact lookups per second" "$rps" "≥ 20,000"
printf '| %-34s | %-12s | %-12s |\n' "p50 latency (ms)" "$p50" "—"
printf '| %-34s | %-12s | %-12s |\n' "p99 latency (ms)" "$p99" "≤ 5"
printf '| %-34s | %-12s | %-12s |\n' "requests (errors)" "$n ($errors)" "0 errors"
