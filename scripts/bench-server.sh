#!/usr/bin/env bash
# Server load benchmark: artifact lookups (GET /v1/buckets/B/channels/C/artifact, with a bearer
# token, as Terraform and deploy tools call it) against `kiln serve` on loopback with the SQLite
# registry, driven by wrk on the same 2-core machine. Goal: ≥ 20,000 req/s with p99 ≤ 5 ms.
set -euo pipefail
cd "$(dirname "$0")/.."

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
api() { curl -fsS -X "$1" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' "$url$2" ${3:+-d "$3"}; }

# A registry with some history: 50 versions of one bucket, each with artifacts in 4 regions, each
# assigned in turn to `stable` (a channel without a policy in the example factory).
for i in $(seq 50); do
  id=$(api POST /v1/buckets/base/versions "{\"fingerprint\":\"fp$i\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  for region in us-east-1 us-west-2 eu-west-1 ap-south-1; do
    api POST "/v1/versions/$id/artifacts" "{\"platform\":\"aws\",\"region\":\"$region\",\"external_id\":\"ami-$i$region\",\"format\":\"\",\"size\":0,\"sha256\":\"\"}" >/dev/null
  done
  api POST "/v1/versions/$id/complete" >/dev/null
  api PUT /v1/buckets/base/channels/stable "{\"version\":\"$id\"}" >/dev/null
done
consumer=$(api POST /v1/tokens '{"name":"bench-reader","role":"consumer"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
lookup="$url/v1/buckets/base/channels/stable/artifact?platform=aws&region=eu-west-1"
curl -fsS -H "Authorization: Bearer $consumer" "$lookup" >/dev/null

cat > "$work/report.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %.1f %.3f %.3f %d\n", summary.requests,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
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
