#!/usr/bin/env bash
# Builds keyward's OpenTelemetry Collector from Go modules with the collector builder
# (packages/images/otel-collector/builder-config.yaml) into a cache outside the checkout,
# then assembles the image's build context next to it. Prints the context directory as
# the last line of stdout; `pnpm images otelCollector` turns it into
# localhost/keyward-otel-collector:<version>.
#
# Idempotent: the binary is rebuilt only when the manifest changed (its sha256 is kept
# next to the binary). Needs Go (PATH or /usr/local/go/bin) and the Go module proxy.
# Cache: ${KEYWARD_CACHE:-$HOME/.cache/keyward}/otelcol-<version>/
set -euo pipefail

repository_root=$(cd "$(dirname "$0")/../.." && pwd)
source_directory=$repository_root/packages/images/otel-collector
manifest=$source_directory/builder-config.yaml

log() { echo "build-otel-collector: $*" >&2; }

# The collector, its components and the builder share one release number.
version=$(sed -n 's/^  version: *//p' "$manifest" | head -n 1)
if [ -z "$version" ]; then
  log "no dist.version in $manifest"
  exit 1
fi

go_binary=$(command -v go || true)
if [ -z "$go_binary" ] && [ -x /usr/local/go/bin/go ]; then go_binary=/usr/local/go/bin/go; fi
if [ -z "$go_binary" ]; then
  log "Go is not installed: install Go 1.25 or newer (PATH or /usr/local/go/bin) to build the collector"
  exit 1
fi
# The builder calls `go` itself.
export PATH="$(dirname "$go_binary"):$PATH"

cache_directory=${KEYWARD_CACHE:-$HOME/.cache/keyward}/otelcol-$version
mkdir -p "$cache_directory"
cd "$cache_directory"

# One build at a time per cache (tests and `pnpm images` may run this together).
exec 9>"$cache_directory/.lock"
flock 9

binary=$cache_directory/distribution/otelcol-keyward
manifest_digest=$(sha256sum "$manifest" | cut -d ' ' -f 1)

if [ -x "$binary" ] && [ "$(cat manifest.sha256 2>/dev/null)" = "$manifest_digest" ]; then
  log "collector $version is up to date ($binary)"
else
  if [ ! -x bin/builder ]; then
    log "installing the collector builder v$version"
    GOBIN=$cache_directory/bin go install "go.opentelemetry.io/collector/cmd/builder@v$version" >&2
  fi
  log "building the collector $version (a few minutes on a cold machine)"
  started=$(date +%s)
  rm -f manifest.sha256
  # CGO_ENABLED=0: a static binary that runs in a FROM scratch image.
  # GOFLAGS=-e: `go mod tidy` also resolves test-only imports of the components, and the
  # module proxy does not serve one of the file exporter's test dependencies.
  CGO_ENABLED=0 GOFLAGS=-e bin/builder --config "$manifest" >&2
  echo "$manifest_digest" >manifest.sha256
  log "built $binary in $(($(date +%s) - started)) s"
fi

# The image's build context: the Containerfile and default config from the repository,
# the binary, and the host's CA bundle for exporters that forward over TLS.
context_directory=$cache_directory/image-context
mkdir -p "$context_directory"
cp "$source_directory/Containerfile" "$source_directory/config.yaml" "$context_directory/"
ln -f "$binary" "$context_directory/otelcol-keyward"
certificate_bundle=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
if [ -f "$certificate_bundle" ]; then
  cp "$certificate_bundle" "$context_directory/ca-certificates.crt"
else
  log "no CA bundle at $certificate_bundle: the image will not verify TLS endpoints"
  : >"$context_directory/ca-certificates.crt"
fi

echo "$context_directory"
