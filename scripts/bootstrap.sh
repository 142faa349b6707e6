#!/usr/bin/env bash
# Installs everything phigate needs to build, test and benchmark on Debian 12. Idempotent:
# a second run only checks and takes seconds.
#  1. Debian 12 packages (apt-get install, skipped when already installed).
#  1b. npm packages of the SARIF validation test (npm ci --prefix tests/sarif).
#  2. Boost 1.83 headers (bookworm-backports), llhttp and prometheus-cpp (trixie) as pinned .debs,
#     fetched with `apt-get download` through a private apt state directory that lists those
#     suites (the system's apt sources are never touched) and unpacked with `dpkg -x` into
#     .deps/prefix (git-ignored), where CMake finds them.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
deps="$root/.deps"
prefix="$deps/prefix"

# Pinned versions of the .debs from outside bookworm. Bump together with STAMP below.
BOOST_VER="1.83.0-4.2~bpo12+1"
LLHTTP_VER="9.2.1~7.3.0+dfsg1+~cs24.12.11-1"
PROM_VER="1.0.2-2+b3"
STAMP="boost=$BOOST_VER llhttp=$LLHTTP_VER prometheus=$PROM_VER"

PACKAGES=(build-essential cmake ninja-build ccache pkg-config git curl ca-certificates openssl
  libssl-dev libyaml-cpp-dev libyaml-dev libspdlog-dev libgtest-dev libgmock-dev libbenchmark-dev
  nginx-light haproxy wrk procps
  python3-websockets  # tests/websocket: the WebSocket client and server of websocket_test.cpp
  python3-yaml  # tests/kube/fake_apiserver.py: YAML bodies (kubectl apply --server-side, control port)
  buildah  # docker/build-image.sh: the shell-less image, built and inspected by tests (DeployImage)
  libsimdjson-dev  # src/kube, src/ingress: JSON from the Kubernetes API (LIST pages, watch streams)
  libnghttp2-dev  # src/http (HTTP/2 server codec), src/upstream (HTTP/2 to gRPC backends), tests/grpc
  nghttp2-client  # tests and bench/: nghttp, h2load
  libre2-dev  # src/router, src/ingress: regex paths and canary header patterns (RE2: linear time)
  python3-h2  # tests/h2: the raw-frame attack client
  libaprutil1-dev  # src/auth: apr_password_validate (htpasswd hashes: bcrypt, apr1, SHA1, crypt)
  libtcmalloc-minimal4  # src/CMakeLists.txt: phigate's allocator (tcmalloc; not in sanitizer builds)
  libgoogle-perftools-dev  # src/cli/huge_pages.cpp: tcmalloc's MallocExtension header (huge pages)
  apache2-utils  # tests/integration: htpasswd makes the basic-auth fixtures
  clang-14 libclang-rt-14-dev libfuzzer-14-dev)  # scripts/fuzz.sh: libFuzzer with ASan+UBSan

die() { echo "bootstrap: error: $*" >&2; exit 1; }
log() { [[ -n "${PHIGATE_QUIET:-}" ]] || echo "bootstrap: $*"; }

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  die "need root (or sudo) to run: $*"; fi; }

# --- 1. Debian packages -------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
  # policy-rc.d keeps nginx/haproxy from being started as system services by their postinst:
  # tests and benchmarks start their own instances on loopback.
  prc=/usr/sbin/policy-rc.d; made_prc=""
  if [[ ! -e $prc ]]; then printf '#!/bin/sh\nexit 101\n' | as_root tee $prc >/dev/null; as_root chmod +x $prc; made_prc=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || { [[ -n $made_prc ]] && as_root rm -f $prc; die "apt-get install failed for: ${missing[*]}"; }
  [[ -n $made_prc ]] && as_root rm -f $prc
fi

# --- 1b. npm packages of the SARIF validation test (tests/sarif) ---------------------------------
# The pinned lock (Ajv, ajv-formats and the official SARIF 2.1.0 schema) with `npm ci`, install
# scripts off (only the schema file is read); skipped when node_modules came from this very lock.
sarif="$root/tests/sarif"
if command -v npm >/dev/null; then
  lock_sum=$(sha256sum "$sarif/package-lock.json" | cut -d' ' -f1)
  if [[ "$(cat "$sarif/node_modules/.phigate-lock" 2>/dev/null)" != "$lock_sum" ]]; then
    log "installing the SARIF validator's npm packages (npm ci --prefix tests/sarif)"
    if npm ci --prefix "$sarif" --ignore-scripts --no-audit --no-fund --loglevel=error >&2; then
      echo "$lock_sum" >"$sarif/node_modules/.phigate-lock"
    elif [[ -n "${CI:-}" ]]; then
      die "npm ci --prefix tests/sarif failed"
    else
      echo "bootstrap: warning: npm ci --prefix tests/sarif failed; ctest check_sarif_valid will skip" >&2
    fi
  else
    log "tests/sarif npm packages up to date"
  fi
else
  log "npm not found: tests/sarif not installed (ctest check_sarif_valid skips outside CI)"
fi

# --- 2. Pinned .debs into .deps/prefix ------------------------------------------------------
if [[ -f "$prefix/.stamp" && "$(cat "$prefix/.stamp")" == "$STAMP" ]]; then
  log "dependency prefix up to date ($prefix)"
  exit 0
fi

apt_dir="$deps/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/etc" "$apt_dir/debs"
cat >"$apt_dir/etc/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
SRC
APT_OPTS=(-o "Dir::Etc::SourceList=$apt_dir/etc/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir" -o "Dir::Cache::archives=$apt_dir/archives"
  -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=/dev/null" -o "APT::Get::List-Cleanup=0")

log "fetching package lists for bookworm-backports and trixie (private apt state in $apt_dir)"
apt-get "${APT_OPTS[@]}" update -qq >"$apt_dir/update.log" 2>&1 \
  || { cat "$apt_dir/update.log" >&2; die "could not fetch bookworm-backports/trixie package lists"; }

WANT=("libboost1.83-dev=$BOOST_VER" "libllhttp-dev=$LLHTTP_VER" "libllhttp9.2=$LLHTTP_VER"
  "prometheus-cpp-dev=$PROM_VER" "libprometheus-cpp-core1.0=$PROM_VER")
(cd "$apt_dir/debs" && rm -f ./*.deb && apt-get "${APT_OPTS[@]}" download "${WANT[@]}" >"$apt_dir/download.log" 2>&1) \
  || { cat "$apt_dir/download.log" >&2; die "download of pinned packages failed: ${WANT[*]} (versions moved? update the pins in scripts/bootstrap.sh)"; }

rm -rf "$prefix.tmp" && mkdir -p "$prefix.tmp"
for deb in "$apt_dir"/debs/*.deb; do
  dpkg -x "$deb" "$prefix.tmp" || die "dpkg -x failed for $deb"
done
for f in "$prefix.tmp/usr/include/boost/version.hpp" "$prefix.tmp/usr/include/llhttp.h" \
  "$prefix.tmp/usr/include/prometheus/counter.h"; do
  [[ -f $f ]] || die "unpacked dependencies lack $f"
done
rm -rf "$prefix" && mv "$prefix.tmp" "$prefix"
echo "$STAMP" >"$prefix/.stamp"
log "dependencies unpacked into $prefix"
