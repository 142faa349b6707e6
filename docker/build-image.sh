#!/usr/bin/env bash
# build-image.sh [--binary FILE] [--tag NAME]: the phigate image without a Docker daemon, with
# buildah (Debian 12: `apt-get install buildah`), from scratch: docker/rootfs.sh's file system, a
# non-root user, phigate as the entry point and an exec-form HEALTHCHECK (`phigate probe`).
# Docker image format (OCI configs cannot carry a HEALTHCHECK). Push with
# `buildah push NAME docker://registry.example/phigate:TAG`.
# Storage: buildah's defaults, or BUILDAH_ROOT/BUILDAH_RUNROOT (the tests use a temporary one);
# the vfs driver needs neither fuse-overlayfs nor kernel overlay support (works in CI containers).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$root/build/release/bin/phigate
tag=localhost/phigate:latest
while [[ $# -gt 0 ]]; do
  case $1 in
    --binary) bin=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    *) echo "usage: build-image.sh [--binary FILE] [--tag NAME]" >&2; exit 2 ;;
  esac
done
command -v buildah >/dev/null || { echo "build-image.sh: buildah is not installed" >&2; exit 1; }
export BUILDAH_FORMAT=docker  # HEALTHCHECK exists only in the Docker image config
store=(--storage-driver vfs)
[[ -n ${BUILDAH_ROOT:-} ]] && store+=(--root "$BUILDAH_ROOT")
[[ -n ${BUILDAH_RUNROOT:-} ]] && store+=(--runroot "$BUILDAH_RUNROOT")

work=$(mktemp -d)
ctr=
cleanup() {
  [[ -n $ctr ]] && buildah "${store[@]}" rm "$ctr" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
"$root/docker/rootfs.sh" "$bin" "$work/rootfs"
version=$("$bin" --version | awk '{print $2}')

ctr=$(buildah "${store[@]}" from scratch)
buildah "${store[@]}" copy --quiet "$ctr" "$work/rootfs" / >/dev/null
# --healthcheck is split into words (exec form, no CMD-SHELL: there is no shell to run one).
buildah "${store[@]}" config \
  --user 10001:10001 \
  --workingdir / \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --entrypoint '["/usr/local/bin/phigate"]' \
  --cmd '["run", "--config", "/etc/phigate/config/phigate.yaml"]' \
  --port 8443/tcp --port 8080/tcp --port 9443/tcp --port 9901/tcp \
  --healthcheck 'CMD /usr/local/bin/phigate probe http://127.0.0.1:9901/healthz' \
  --healthcheck-interval 10s --healthcheck-timeout 3s --healthcheck-retries 3 \
  --healthcheck-start-period 10s \
  --label org.opencontainers.image.title=phigate \
  --label "org.opencontainers.image.version=$version" \
  --created-by "docker/build-image.sh" \
  "$ctr"
buildah "${store[@]}" commit --quiet --format docker --rm "$ctr" "$tag" >/dev/null
ctr=
echo "$tag"
