#!/usr/bin/env bash
# Sets up a fresh machine for keyward: pnpm, the dependencies, podman and its API
# socket, a build, and the local images. Idempotent: re-running skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "setup: keyward needs Node.js 20.18 or newer (found $(node --version 2>/dev/null || echo none))." >&2
  exit 1
fi

if ! command -v pnpm >/dev/null 2>&1; then
  say "installing pnpm 10"
  npm install -g pnpm@10.34.8 >&2
fi

say "installing dependencies"
pnpm install --frozen-lockfile >&2

say "starting podman's API socket"
eval "$(sh scripts/ci/start-podman.sh)"

# The web UI's end-to-end tests drive Debian's Chromium through playwright-core
# (`npx playwright install` cannot download browsers on these machines).
if [ ! -x /usr/bin/chromium ]; then
  say "installing chromium (apt-get) for the web UI tests"
  sudo_prefix=""
  if [ "$(id -u)" -ne 0 ]; then sudo_prefix="sudo"; fi
  $sudo_prefix apt-get update >&2
  $sudo_prefix apt-get install -y chromium >&2
fi

say "building packages"
pnpm build >&2

if node -e 'process.exit(require("./package.json").scripts.images ? 0 : 1)'; then
  say "building local images"
  pnpm images >&2
fi

say "done. Podman API: $DOCKER_HOST"
