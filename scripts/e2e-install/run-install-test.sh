#!/usr/bin/env bash
# End-to-end install test (issue 18): keyward as its users get it from npm.
#   1. packs every published package and the example plugin (`pnpm pack`), installs the
#      packages with npm into an empty folder;
#   2. starts a second podman API service with its own --root, --runroot, network config
#      and socket, beside the one the other tests use: no images, no instances;
#   3. runs the installed `keyward demo` there to its six PASS lines, then `keyward rm demo`;
#   4. `keyward plugins add <the example plugin's tarball>`, lists it (`plugins ls`,
#      `providers`), deploys an instance with its sidecar, runs its self-test, removes it.
# Everything it makes lives under one work directory; the service is stopped and the
# directory removed at the end (KEEP=1 keeps it). Slow: every image is built from nothing.
# Usage: bash scripts/e2e-install/run-install-test.sh   (or: pnpm test:install)
set -euo pipefail

repository=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/keyward-e2e-install.XXXXXX")
started=$(date +%s)
step() { echo "e2e-install [$(($(date +%s) - started)) s] $*" >&2; }
fail() { step "FAILED: $*"; exit 1; }

export CONTAINERS_CONF="$repository/scripts/ci/containers.conf"
socket="$work/podman.sock"
podman_own=(podman --root "$work/storage" --runroot "$work/runroot" --network-config-dir "$work/networks"
  --tmpdir "$work/libpod-tmp" --volumepath "$work/volumes")
podman_pid=""
# Every podman command of this test runs in the service's own mount namespace (see below).
podman_in_service() { nsenter --target "$podman_pid" --mount -- "${podman_own[@]}" "$@"; }

cleanup() {
  local status=$?
  if [ -n "$podman_pid" ]; then
    step "stopping the second podman service (pid $podman_pid) and removing what ran in it"
    # Only this service's own storage: every container and network in it is this test's.
    podman_in_service rm --all --force --time 0 >/dev/null 2>&1 || true
    podman_in_service network prune --force >/dev/null 2>&1 || true
    podman_in_service rmi --all --force >/dev/null 2>&1 || true
    kill "$podman_pid" 2>/dev/null || true
    wait "$podman_pid" 2>/dev/null || true
    # Exec sessions' conmon processes wait up to 5 min after their container is gone; these
    # (their command line names this test's storage) are this test's own.
    leftover=$(pgrep -f "conmon.*$work/storage" || true)
    [ -z "$leftover" ] || kill $leftover 2>/dev/null || true
  fi
  # containers/storage leaves its overlay home mounted (private): unmount before removing.
  if mountpoint -q "$work/storage/overlay" 2>/dev/null; then umount "$work/storage/overlay" || true; fi
  if [ "${KEEP:-0}" = 1 ]; then step "kept $work"; else rm -rf "$work"; fi
  step "total $(($(date +%s) - started)) s, exit $status"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ping_socket() { curl -fsS --max-time 2 --unix-socket "$socket" http://d/_ping >/dev/null 2>&1; }

if [ -n "${KEYWARD_E2E_REUSE:-}" ]; then
  # Debugging: reuse the install of a kept run (KEEP=1) instead of building, packing and installing.
  cp -a "$KEYWARD_E2E_REUSE/app" "$KEYWARD_E2E_REUSE/plugin-tarball" "$work/"
else
step "building the packages"
(cd "$repository" && pnpm build >"$work/build.log" 2>&1) || { tail -30 "$work/build.log"; fail "pnpm build"; }

step "packing every published package and the example plugin"
mkdir -p "$work/tarballs" "$work/plugin-tarball"
for manifest in "$repository"/packages/*/package.json "$repository"/apps/*/package.json; do
  directory=$(dirname "$manifest")
  if node -e 'process.exit(require(process.argv[1]).private ? 0 : 1)' "$manifest"; then continue; fi
  (cd "$directory" && pnpm pack --pack-destination "$work/tarballs" >/dev/null)
done
(cd "$repository/examples/provider-example" && pnpm pack --pack-destination "$work/plugin-tarball" >/dev/null)
ls "$work/tarballs" "$work/plugin-tarball" >&2

step "npm install of the tarballs into an empty folder"
mkdir -p "$work/app" "$work/elsewhere"
(cd "$work/app" && npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error "$work"/tarballs/*.tgz) ||
  fail "npm install"
keyward="$work/app/node_modules/.bin/keyward"
[ -x "$keyward" ] || fail "the install has no keyward command"
if find "$work/app/node_modules/@keyward" -maxdepth 2 -name src | grep -q .; then
  fail "an installed @keyward package holds src/: the test would not prove the dist-only path"
fi

fi
keyward="$work/app/node_modules/.bin/keyward"
mkdir -p "$work/elsewhere"

step "starting a second podman API service on $socket (own root, runroot, networks)"
mkdir -p "$work/libpod-tmp"
# netavark keeps aardvark-dns's config in /run/containers/networks/aardvark-dns whatever the
# --runroot: shared with the main service, our networks (same names: keyward-demo-*) would mix
# into its DNS entries and ours would never get a resolver. A private mount namespace with an
# empty tmpfs there gives this service its own aardvark-dns (on its own bridges' addresses).
(cd / && exec unshare --mount --propagation private sh -c \
  'mount -t tmpfs keyward-e2e-aardvark /run/containers/networks && exec "$@"' sh \
  "${podman_own[@]}" system service --time=0 "unix://$socket" >"$work/podman.log" 2>&1) &
podman_pid=$!
for _ in $(seq 1 60); do ping_socket && break; sleep 1; done
ping_socket || { cat "$work/podman.log" >&2; fail "the second podman service does not answer"; }
images=$(podman_in_service images --quiet | wc -l)
[ "$images" -eq 0 ] || fail "the second podman has $images images; it must start empty"

# What an npm user's shell holds: the installed keyward, this runtime, a data directory of its own.
export DOCKER_HOST="unix://$socket" KEYWARD_DATA_DIR="$work/data"
unset KEYWARD_API CONTAINER_HOST
cd "$work/elsewhere"

# Diagnostics: every container's log, kept while the run rolls back (only with KEEP=1).
if [ "${KEEP:-0}" = 1 ]; then
  mkdir -p "$work/container-logs"
  while kill -0 "$podman_pid" 2>/dev/null; do
    for name in $(podman_in_service ps --all --format '{{.Names}}' 2>/dev/null); do
      podman_in_service logs "$name" >"$work/container-logs/$name.log" 2>&1 || true
    done
    sleep 3
  done &
fi

step "keyward demo (builds every image it needs in the empty podman)"
demo_started=$(date +%s)
"$keyward" demo --non-interactive 2>&1 | tee "$work/demo.log" || fail "keyward demo"
passes=$(grep -c 'PASS' "$work/demo.log" || true)
[ "$passes" -eq 6 ] || fail "keyward demo printed $passes PASS lines, not 6"
grep -q 'FAIL' "$work/demo.log" && fail "keyward demo printed a FAIL line"
step "demo: six PASS lines in $(($(date +%s) - demo_started)) s"
"$keyward" rm demo || fail "keyward rm demo"
left=$(podman_in_service ps --all --quiet | wc -l)
[ "$left" -eq 0 ] || fail "keyward rm demo left $left containers"

step "keyward plugins add (the packed example plugin)"
"$keyward" plugins add "$work"/plugin-tarball/*.tgz || fail "keyward plugins add"
"$keyward" plugins ls | tee "$work/plugins.log"
grep -q '✔ keyward-provider-example@.*sidecar greeting' "$work/plugins.log" || fail "plugins ls does not list the example's greeting sidecar"
"$keyward" providers | grep -q '^  greeting' || fail "keyward providers does not list greeting"

step "deploying an instance with the plugin's sidecar"
node_version=$(node --version | sed 's/^v//')
export KEYWARD_EXAMPLE_IMAGE="localhost/keyward-node-runtime:$node_version"
cat >"$work/greeting.yaml" <<SPEC
name: greeting-e2e
target: local
agent:
  image: localhost/keyward-agent-standin:0.1.0
  port: 18789
  skillsDirectory: /home/node/.openclaw/skills
sidecars:
  tokenizer:
    credentials: []
  greeting:
    greeting: Hello from an installed plugin
SPEC
"$keyward" deploy -f "$work/greeting.yaml" || fail "deploying with the plugin's sidecar"
"$keyward" ls | tee "$work/ls.log"
grep -q 'greeting-e2e' "$work/ls.log" || fail "keyward ls does not show greeting-e2e"
"$keyward" verify greeting-e2e | tee "$work/verify.log" || fail "the self-test of greeting-e2e"
grep -q 'greeting' "$work/verify.log" || fail "the self-test ran no greeting check"
"$keyward" rm greeting-e2e || fail "keyward rm greeting-e2e"
left=$(podman_in_service ps --all --quiet | wc -l)
[ "$left" -eq 0 ] || fail "keyward rm greeting-e2e left $left containers"

step "PASSED: installed from npm tarballs, demo and plugin deploy on an empty podman"
