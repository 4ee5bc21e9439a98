#!/usr/bin/env bash
# Prepares keyward's LiteLLM image: makes the Debian bookworm base image
# localhost/keyward-debian:bookworm with debootstrap and `podman import` (once per
# machine; no registry needed), then assembles the build context (Containerfile,
# hash-pinned requirements, default config from packages/images/litellm) in a cache
# outside the checkout. Prints the context directory as the last line of stdout;
# `pnpm images litellm` builds localhost/keyward-litellm:<litellm version>-otel<OpenTelemetry
# SDK version> from it (the pip install with --require-hashes runs in that build).
#
# Idempotent: an existing base image is kept. Needs root (debootstrap), podman and
# Debian's archive. Cache: ${KEYWARD_CACHE:-$HOME/.cache/keyward}/litellm-<tag>/
set -euo pipefail

repository_root=$(cd "$(dirname "$0")/../.." && pwd)
source_directory=$repository_root/packages/images/litellm
base_image=localhost/keyward-debian:bookworm

log() { echo "build-litellm: $*" >&2; }

pinned() { sed -n "s/^$1==\\([^ ]*\\).*/\\1/p" "$source_directory/requirements.txt" | head -n 1; }
litellm_version=$(pinned litellm)
opentelemetry_version=$(pinned opentelemetry-sdk)
if [ -z "$litellm_version" ] || [ -z "$opentelemetry_version" ]; then
  log "no litellm==<version> or opentelemetry-sdk==<version> pin in $source_directory/requirements.txt"
  exit 1
fi
# The image tag (packages/images/src/image-definitions.ts): LiteLLM's version and the
# OpenTelemetry SDK's. Images and this cache are shared by every checkout on the machine,
# so a change of content gets a new name rather than overwriting another checkout's.
version=$litellm_version-otel$opentelemetry_version

cache_root=${KEYWARD_CACHE:-$HOME/.cache/keyward}
cache_directory=$cache_root/litellm-$version
mkdir -p "$cache_directory"

# One preparation at a time per machine (the base image is shared).
exec 9>"$cache_root/.build-litellm.lock"
flock 9

if podman image exists "$base_image"; then
  log "$base_image exists"
else
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap >&2 ||
      { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap >&2; }
  fi
  started=$(date +%s)
  root_filesystem=$cache_root/debian-bookworm-rootfs
  rm -rf "$root_filesystem"
  log "debootstrapping Debian bookworm (minbase + python3) into $root_filesystem"
  debootstrap --variant=minbase --include=ca-certificates,python3,python3-venv \
    bookworm "$root_filesystem" >&2
  # Apt's downloaded packages are not needed in the image.
  rm -rf "$root_filesystem"/var/cache/apt/archives/*.deb "$root_filesystem"/var/lib/apt/lists/*
  # Imported images have no PATH unless given one.
  tar -C "$root_filesystem" -c . |
    podman import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["/bin/bash"]' \
      - "$base_image" >&2
  rm -rf "$root_filesystem"
  log "made $base_image in $(($(date +%s) - started)) s"
fi

context_directory=$cache_directory/image-context
mkdir -p "$context_directory"
cp "$source_directory/Containerfile" "$source_directory/requirements.txt" \
  "$source_directory/config.yaml" "$context_directory/"
# pip in the image build trusts what this machine trusts (see the Containerfile).
certificate_bundle=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
if [ ! -f "$certificate_bundle" ]; then
  log "no CA bundle at $certificate_bundle (set SSL_CERT_FILE): pip needs one to reach the package index"
  exit 1
fi
cp "$certificate_bundle" "$context_directory/build-ca-certificates.crt"

echo "$context_directory"
