#!/usr/bin/env bash
# Builds the cpe-sim OCI image without pulling a base image: the release binary, the shared
# libraries it links (glibc, libgcc_s, from this machine's Debian packages), the CA bundle (Debian's
# ca-certificates), the example profiles and scenarios, and a non-root user, on `scratch`, with
# buildah. Tagged cpe-sim:<version>-g<sha> (and cpe-sim:latest).
#
#   scripts/build-image.sh                    # cargo build --release, then the image
#   scripts/build-image.sh --binary PATH      # an already built binary (tests use the debug one)
#   scripts/build-image.sh --archive FILE     # also write the image as an OCI archive (for
#                                             # `podman load`, `skopeo copy`, a registry push)
#
# Needs buildah (`apt-get install buildah`; the script installs it when run as root on Debian).
# Storage: buildah's vfs driver unless STORAGE_DRIVER names another (vfs works inside containers
# and CI); run the image with the same driver: `podman --storage-driver vfs run ...`.
# Prints the image's tag on its last line. `Containerfile` describes the same image for Docker.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
archive=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
    --archive) archive="${2:?--archive needs a file}"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "build-image: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

if ! command -v buildah >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "build-image: installing buildah (Debian package)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends buildah >/dev/null
  else
    echo "build-image: buildah not found; install it (Debian/Ubuntu: apt-get install buildah)" >&2
    exit 1
  fi
fi
driver="${STORAGE_DRIVER:-vfs}"
bah() { buildah --storage-driver "$driver" "$@"; }

if [[ -z "$binary" ]]; then
  cargo build --release --locked >&2
  binary=target/release/cpe-sim
fi
[[ -x "$binary" ]] || { echo "build-image: $binary is not an executable" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
sha=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
tag="cpe-sim:${version}-g${sha}"

root=$(mktemp -d)
ctr=""
cleanup() {
  [[ -n "$ctr" ]] && bah rm "$ctr" >/dev/null 2>&1 || true
  rm -rf "$root" "$root.sys.tar" "$root.data.tar"
}
trap cleanup EXIT

# The root filesystem: binary, the libraries ldd names (with their paths), CA bundle, data.
install -D -m 0755 "$binary" "$root/usr/local/bin/cpe-sim"
# Debug symbols stay with the build (the release profile keeps line tables for profiling).
command -v strip >/dev/null 2>&1 && strip --strip-debug "$root/usr/local/bin/cpe-sim"
ldd "$binary" | awk '/=> \// { print $3 } /^\t\// { print $1 }' | while read -r lib; do
  install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
done
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
fi
mkdir -p "$root/usr/share/cpe-sim"
cp -r profiles "$root/usr/share/cpe-sim/profiles"
[[ -d scenarios ]] && cp -r scenarios "$root/usr/share/cpe-sim/scenarios"
printf 'root:x:0:0:root:/root:/sbin/nologin\ncpesim:x:65532:65532:cpe-sim:/data:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\ncpesim:x:65532:\n' >"$root/etc/group"
mkdir -p "$root/data" "$root/tmp"
chmod 1777 "$root/tmp"

# Two layers' worth of files as tarballs, so ownership is the image's, not this machine's:
# everything root's, but /data (the working directory: --state-dir, reports, logs), the user's.
tar -C "$root" --numeric-owner --owner=0 --group=0 --exclude=./data -cf "$root.sys.tar" .
tar -C "$root" --numeric-owner --owner=65532 --group=65532 -cf "$root.data.tar" ./data
ctr=$(bah from scratch)
bah add --quiet "$ctr" "$root.sys.tar" / >/dev/null
bah add --quiet "$ctr" "$root.data.tar" / >/dev/null
bah config \
  --entrypoint '["/usr/local/bin/cpe-sim"]' \
  --cmd '[]' \
  --user 65532:65532 \
  --workingdir /data \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --port 7547/tcp \
  --label org.opencontainers.image.title=cpe-sim \
  --label "org.opencontainers.image.version=${version}" \
  --label "org.opencontainers.image.revision=${sha}" \
  --label org.opencontainers.image.licenses=Apache-2.0 \
  "$ctr"
bah commit --quiet "$ctr" "$tag" >/dev/null
bah tag "$tag" cpe-sim:latest
if [[ -n "$archive" ]]; then
  rm -f "$archive"
  bah push --quiet "$tag" "oci-archive:${archive}:${tag}" >/dev/null
  echo "build-image: wrote $archive" >&2
fi
echo "build-image: built $tag ($(du -sh "$root" | cut -f1) unpacked)" >&2
echo "$tag"
