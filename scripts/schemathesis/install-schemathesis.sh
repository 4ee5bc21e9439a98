#!/usr/bin/env bash
# Installs schemathesis (PyPI; it fuzzes an HTTP API from its OpenAPI document) into a venv in
# ${KEYWARD_CACHE:-$HOME/.cache/keyward}/schemathesis-<version>/, from requirements.txt beside
# this script (every package pinned by version and hash). Prints the venv's `schemathesis`
# path as the last line of stdout. Idempotent: a venv that answers with the pinned version is
# kept. The API's fuzz test (apps/api/test/openapi-fuzz.integration.test.ts) calls it.
set -euo pipefail

script_directory=$(cd "$(dirname "$0")" && pwd)
requirements=$script_directory/requirements.txt
log() { echo "install-schemathesis: $*" >&2; }

version=$(sed -n 's/^schemathesis==\([^ ]*\).*/\1/p' "$requirements" | head -n 1)
if [ -z "$version" ]; then
  log "no schemathesis==<version> pin in $requirements"
  exit 1
fi
cache_root=${KEYWARD_CACHE:-$HOME/.cache/keyward}
venv=$cache_root/schemathesis-$version
program=$venv/bin/schemathesis
mkdir -p "$cache_root"

# One install at a time per machine (tests and setup.sh may ask at once).
exec 9>"$cache_root/.install-schemathesis.lock"
flock 9

installed() { [ -x "$program" ] && "$program" --version 2>/dev/null | grep -q "version $version\$"; }

if installed; then
  log "schemathesis $version is in $venv"
else
  python=${PYTHON:-python3}
  if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' 2>/dev/null; then
    log "needs Python 3.9 or newer as python3 (or PYTHON=...); found: $("$python" --version 2>&1 || echo none)"
    exit 1
  fi
  log "installing schemathesis $version into $venv (PyPI, hash-pinned)"
  rm -rf "$venv"
  if ! "$python" -m venv "$venv" >&2; then
    log "python3 -m venv failed: install Debian's python3-venv (apt-get install -y python3-venv)"
    exit 1
  fi
  if ! "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-deps \
    -r "$requirements" >&2; then
    rm -rf "$venv"
    log "pip could not install the pinned packages; requirements.txt pins wheels for CPython 3.11 on Linux x86_64 (this is $("$python" --version 2>&1), $(uname -m))"
    exit 1
  fi
  installed || {
    log "the venv does not answer with schemathesis $version"
    exit 1
  }
fi
echo "$program"
