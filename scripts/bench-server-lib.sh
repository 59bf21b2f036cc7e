# Shared by the server benchmarks (sourced): the history they look up and wrk's report.

# seed_history URL ADMIN_TOKEN: 50 versions of bucket `base`, each with artifacts in 4 regions,
# each assigned in turn to `stable` (a channel without a policy in the example factory). Prints
# a consumer token for the lookups.
seed_history() {
  local url=$1 admin=$2 i id region
  api() { curl -fsS -X "$1" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' "$url$2" ${3:+-d "$3"}; }
  for i in $(seq 50); do
    id=$(api POST /v1/buckets/base/versions "{\"fingerprint\":\"fp$i\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    for region in us-east-1 us-west-2 eu-west-1 ap-south-1; do
      api POST "/v1/versions/$id/artifacts" "{\"platform\":\"aws\",\"region\":\"$region\",\"external_id\":\"ami-$i$region\",\"format\":\"\",\"size\":0,\"sha256\":\"\"}" >/dev/null
    done
    api POST "/v1/versions/$id/complete" >/dev/null
    api PUT /v1/buckets/base/channels/stable "{\"version\":\"$id\"}" >/dev/null
  done
  api POST /v1/tokens '{"name":"bench-reader","role":"consumer"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}

# The lookup every benchmark request makes.
LOOKUP_PATH="/v1/buckets/base/channels/stable/artifact?platform=aws&region=eu-west-1"

# write_report_lua FILE: a wrk script printing `RESULT requests rps p50_ms p99_ms errors`.
write_report_lua() {
  cat > "$1" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %.1f %.3f %.3f %d\n", summary.requests,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
}
