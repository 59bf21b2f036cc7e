#!/usr/bin/env bash
# Artifact lookups per second on a PostgreSQL registry: one `kiln serve`, then two `kiln serve`
# processes on the same database (each half the connections, requests summed), driven by wrk.
# Everything (PostgreSQL, servers, wrk) shares this machine's cores, so the second server adds
# capacity only where one server left a core idle; the figures say how much.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-server-lib.sh

scripts/host-deps.sh base postgres server
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/kiln/target}"
cargo build --release --quiet -p kiln-cli
kiln="$CARGO_TARGET_DIR/release/kiln"
duration=${BENCH_SECONDS:-15}
connections=${BENCH_CONNECTIONS:-32}
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

work=$(mktemp -d /var/tmp/kiln-bench-pg.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mkdir "$work/pg" && chown postgres:postgres "$work/pg"
runuser -u postgres -- "$pgbin/initdb" -D "$work/pg/data" -A trust -U postgres --no-locale -E UTF8 >/dev/null
pgport=$(free_port)
runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
  -o "-p $pgport -k $work/pg -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
runuser -u postgres -- "$pgbin/psql" -h 127.0.0.1 -p "$pgport" -U postgres -qc "CREATE DATABASE kiln"

"$kiln" init "$work/f" >/dev/null
f="$work/f"
sed -i "s#registry { url = \"sqlite://.kiln/registry.db\" }#registry { url = \"postgres://postgres@127.0.0.1:$pgport/kiln\" }#" "$f/kiln.hcl"
admin=$("$kiln" --factory "$f" token create bench-admin --role admin 2>/dev/null)

serve() { # sets $served to the new server's url (no subshell: its pid must reach cleanup)
  local port; port=$(free_port)
  "$kiln" --factory "$f" serve --listen "127.0.0.1:$port" >"$work/serve-$port.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/v1/openapi.json" && break; sleep 0.1; done
  served="http://127.0.0.1:$port"
}
serve
one=$served
consumer=$(seed_history "$one" "$admin")
path="$LOOKUP_PATH"
write_report_lua "$work/report.lua"
load() { # URL CONNECTIONS OUT
  wrk -t1 -c"$2" -d"${duration}s" --latency -s "$work/report.lua" -H "Authorization: Bearer $consumer" "$1$path" | grep '^RESULT' >"$3"
}
echo "bench-server-pg: warming up..." >&2
wrk -t1 -c"$connections" -d3s -H "Authorization: Bearer $consumer" "$one$path" >/dev/null
echo "bench-server-pg: ${duration}s on one server..." >&2
load "$one" "$connections" "$work/one"
serve
two=$served
wrk -t1 -c"$connections" -d3s -H "Authorization: Bearer $consumer" "$two$path" >/dev/null
echo "bench-server-pg: ${duration}s on two servers..." >&2
load "$one" $((connections / 2)) "$work/a" &
la=$!
load "$two" $((connections / 2)) "$work/b" &
lb=$!
wait "$la" "$lb"
read -r _ n1 rps1 p50_1 p99_1 e1 <"$work/one"
read -r _ na rpsa p50a p99a ea <"$work/a"
read -r _ nb rpsb p50b p99b eb <"$work/b"
rps2=$(python3 -c "print(round($rpsa + $rpsb, 1))")
ratio=$(python3 -c "print(round(($rpsa + $rpsb) / $rps1, 2))")

echo
echo "PostgreSQL registry: artifact lookups ($(nproc) cores shared by PostgreSQL, the servers and wrk)"
printf '| %-30s | %-14s | %-14s |\n' measure "1 server" "2 servers"
printf '| %-30s | %-14s | %-14s |\n' --- --- ---
printf '| %-30s | %-14s | %-14s |\n' "lookups per second" "$rps1" "$rps2 (×$ratio)"
printf '| %-30s | %-14s | %-14s |\n' "p99 latency (ms)" "$p99_1" "$p99a / $p99b"
printf '| %-30s | %-14s | %-14s |\n' "requests (errors)" "$n1 ($e1)" "$((na + nb)) ($((ea + eb)))"
