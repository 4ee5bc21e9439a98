#!/usr/bin/env bash
# Builds Fly.io's tokenizer (the reference @keyward/tokenizer is compatible with) at a pinned
# commit, plus a small macaroon-minting helper built from the same source, into a cache outside
# the checkout. Once per machine: a second run only checks and prints the directory.
#
#   bash scripts/reference-tokenizer/build.sh     # prints the directory holding
#                                                 #   tokenizer       (cmd/tokenizer)
#                                                 #   mint-macaroon   (mint-macaroon.go beside this script)
#
# Source: the Go module proxy, by the pinned pseudo-version (`go mod download`); dependencies
# too, checked against the module's go.sum. Where the proxy refuses that version, this exits 3
# and says so: point REFERENCE_TOKENIZER_DIR at a directory holding `tokenizer` and
# `mint-macaroon` built elsewhere from the same commit, or run without the reference.
set -euo pipefail

VERSION=v0.0.3-0.20260501184601-a60499d50d16
COMMIT=a60499d50d168b57492fc5e75069d82d622a931a
MODULE=github.com/superfly/tokenizer

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
go="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
cache="${KEYWARD_CACHE:-$HOME/.cache/keyward}"
target="$cache/reference-tokenizer-$VERSION"
# The helper's source is part of the stamp: editing it rebuilds.
stamp="$VERSION $(sha256sum "$here/mint-macaroon.go" | cut -c1-64)"

if [[ -n "${REFERENCE_TOKENIZER_DIR:-}" ]]; then
  if [[ -x "$REFERENCE_TOKENIZER_DIR/tokenizer" && -x "$REFERENCE_TOKENIZER_DIR/mint-macaroon" ]]; then
    echo "$REFERENCE_TOKENIZER_DIR"
    exit 0
  fi
  echo "reference-tokenizer: REFERENCE_TOKENIZER_DIR=$REFERENCE_TOKENIZER_DIR holds no executable tokenizer and mint-macaroon" >&2
  exit 1
fi

if [[ -x "$target/tokenizer" && -x "$target/mint-macaroon" && "$(cat "$target/stamp" 2>/dev/null)" == "$stamp" ]]; then
  echo "$target"
  exit 0
fi

if [[ ! -x "$go" ]]; then
  echo "reference-tokenizer: Go 1.25+ is needed (looked for go on PATH and /usr/local/go/bin/go)" >&2
  exit 1
fi

mkdir -p "$cache"
exec 9>"$cache/reference-tokenizer.lock"
flock 9
# Another build may have finished while this one waited.
if [[ -x "$target/tokenizer" && -x "$target/mint-macaroon" && "$(cat "$target/stamp" 2>/dev/null)" == "$stamp" ]]; then
  echo "$target"
  exit 0
fi

started=$SECONDS
work="$(mktemp -d "$cache/reference-tokenizer-build.XXXXXX")"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
source="$work/src"
mkdir -p "$source"

if module_dir="$(cd "$work" && "$go" mod download -json "$MODULE@$VERSION" 2>/dev/null |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" && [[ -n "$module_dir" && -d "$module_dir" ]]; then
  cp -R "$module_dir/." "$source/"
  chmod -R u+w "$source"
  echo "reference-tokenizer: $MODULE@$VERSION from the Go module proxy" >&2
else
  echo "reference-tokenizer: the Go module proxy does not serve $MODULE@$VERSION (commit $COMMIT) here. Point REFERENCE_TOKENIZER_DIR at a directory holding tokenizer and mint-macaroon built from that commit where the proxy serves it, or run without the reference." >&2
  exit 3
fi

cp "$here/mint-macaroon.go" "$source/cmd/keyward-mint-macaroon.go.tmp"
mkdir -p "$source/cmd/keyward-mint-macaroon"
mv "$source/cmd/keyward-mint-macaroon.go.tmp" "$source/cmd/keyward-mint-macaroon/main.go"

out="$work/out"
mkdir -p "$out"
(
  cd "$source"
  export CGO_ENABLED=0 GOFLAGS=-mod=readonly
  "$go" build -trimpath -ldflags "-X main.Version=$VERSION" -o "$out/tokenizer" ./cmd/tokenizer
  "$go" build -trimpath -o "$out/mint-macaroon" ./cmd/keyward-mint-macaroon
)
echo "$stamp" >"$out/stamp"
rm -rf "$target"
mv "$out" "$target"
echo "reference-tokenizer: built into $target in $((SECONDS - started)) s" >&2
echo "$target"
