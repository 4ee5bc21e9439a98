#!/usr/bin/env bash
# End-to-end install test (issue 18): keyward as its users get it from npm.
#   1. packs every published package and the example plugin (`pnpm pack`), installs the
#      packages with npm into an empty folder and puts its `node_modules/.bin` on the PATH;
#   2. starts a second podman API service in a machine of its own (a private mount and network
#      namespace) with its own --root, --runroot, network config and socket: no images, no
#      instances, beside the service the other tests use, which it never touches;
#   3. runs the installed `keyward demo` there to its six PASS lines, then `keyward rm demo`;
#   4. `keyward plugins add <the example plugin's tarball>`, lists it (`plugins ls`,
#      `providers`), deploys an instance with its sidecar, runs its self-test, removes it.
# Prints one PASS line per check; exits non-zero at the first failure. Everything it makes lives
# under one work directory; the service and its namespaces end and the directory is removed at
# the end (KEEP=1 keeps the directory). Every image is built from nothing.
# Usage: bash scripts/e2e-install/run-install-test.sh   (or: pnpm test:install)
set -euo pipefail

repository=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/keyward-e2e-install.XXXXXX")
started=$(date +%s)
step() { echo "e2e-install [$(($(date +%s) - started)) s] $*" >&2; }
fail() {
  step "FAILED: $*"
  exit 1
}
pass() { echo "e2e-install PASS $*"; }

[ "$(id -u)" -eq 0 ] || fail "run it as root: it starts a rootful podman in namespaces of its own, like the service the tests use"
for tool in podman unshare nsenter slirp4netns ip curl npm pnpm; do
  command -v "$tool" >/dev/null || fail "$tool is missing (bash scripts/setup.sh --tests installs it)"
done

# What an npm user's shell holds: none of the npm_* / pnpm settings `pnpm test:install` exports
# (npm reads npm_config_*), nothing pointing at another keyward or runtime.
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep -E '^(npm_|PNPM_|pnpm_)' || true)
unset KEYWARD_API KEYWARD_TOKEN KEYWARD_PORT CONTAINER_HOST DOCKER_HOST

# The second service's subnets: none of podman's defaults (10.88.0.0/16, 10.89.0.0/16 and up), so
# the checks below can tell its addresses from the main service's anywhere on the host.
subnet_prefix=10.213
{
  cat "$repository/scripts/ci/containers.conf"
  printf '\n[network]\ndefault_subnet = "%s.0.0/24"\n' "$subnet_prefix"
  printf 'default_subnet_pools = [{ "base" = "%s.0.0/16", "size" = 24 }]\n' "$subnet_prefix"
} >"$work/containers.conf"
export CONTAINERS_CONF="$work/containers.conf"
socket="$work/podman.sock"
podman_own=(podman --root "$work/storage" --runroot "$work/runroot" --network-config-dir "$work/networks"
  --tmpdir "$work/libpod-tmp" --volumepath "$work/volumes")
machine_pid="" slirp_pid="" podman_pid=""
# A command inside the second machine's mount and network namespaces, from the current folder.
in_machine() { nsenter --target "$machine_pid" --mount --net --wd="$PWD" -- "$@"; }
podman_in_machine() { in_machine "${podman_own[@]}" "$@"; }

processes_in_network_namespace() {
  local process
  for process in /proc/[0-9]*; do
    [ "$(readlink "$process/ns/net" 2>/dev/null)" = "$1" ] && echo "${process#/proc/}"
  done
  return 0
}

cleanup() {
  local status=$?
  set +e
  if [ -n "$machine_pid" ] && kill -0 "$machine_pid" 2>/dev/null; then
    step "removing what ran in the second podman and ending its machine (namespaces of pid $machine_pid)"
    podman_in_machine rm --all --force --time 0 >/dev/null 2>&1
    step "stopping the second podman service"
    [ -z "$podman_pid" ] || {
      kill "$podman_pid" 2>/dev/null
      wait "$podman_pid" 2>/dev/null
    }
    # Whatever still runs in the machine's network namespace is this test's (exec sessions'
    # conmon, aardvark-dns, the namespace's holder): the namespace identifies them exactly.
    machine_network=$(readlink "/proc/$machine_pid/ns/net")
    step "ending the processes left in the second machine"
    for _ in $(seq 1 50); do
      remaining=$(processes_in_network_namespace "$machine_network")
      [ -n "$remaining" ] || break
      # shellcheck disable=SC2086 # one argument per process id
      kill -9 $remaining 2>/dev/null
      sleep 0.2
    done
    [ -z "$remaining" ] || step "processes still in the second machine: $remaining"
  fi
  [ -z "$slirp_pid" ] || kill "$slirp_pid" 2>/dev/null
  wait 2>/dev/null
  # The storage's mounts lived in the machine's mount namespace only: gone with its last process.
  if [ "${KEEP:-0}" = 1 ]; then
    step "kept $work"
  else
    step "removing $work"
    rm -rf "$work"
  fi
  step "total $(($(date +%s) - started)) s, exit $status"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ping_socket() { curl -fsS --max-time 2 --unix-socket "$1" http://d/_ping >/dev/null 2>&1; }
main_socket=/run/keyward-podman.sock
main_answered=false
if ping_socket "$main_socket"; then main_answered=true; fi

if [ -n "${KEYWARD_E2E_REUSE:-}" ]; then
  # Debugging: reuse the install of a kept run (KEEP=1) instead of building, packing and installing.
  cp -a "$KEYWARD_E2E_REUSE/app" "$KEYWARD_E2E_REUSE/plugin-tarball" "$work/"
else
  step "building the packages"
  (cd "$repository" && pnpm build >"$work/build.log" 2>&1) || {
    tail -30 "$work/build.log"
    fail "pnpm build"
  }

  step "packing every published package and the example plugin"
  mkdir -p "$work/tarballs" "$work/plugin-tarball"
  for manifest in "$repository"/packages/*/package.json "$repository"/apps/*/package.json; do
    directory=$(dirname "$manifest")
    if node -e 'process.exit(require(process.argv[1]).private ? 0 : 1)' "$manifest"; then continue; fi
    (cd "$directory" && pnpm pack --pack-destination "$work/tarballs" >/dev/null)
  done
  (cd "$repository/examples/provider-example" && pnpm pack --pack-destination "$work/plugin-tarball" >/dev/null)
  ls "$work/tarballs" "$work/plugin-tarball" >&2

  # The README's install into an empty folder, with the tarballs standing in for the registry
  # (all of them: the @keyward dependencies are not published yet).
  step "npm install of the tarballs into an empty folder"
  mkdir -p "$work/app"
  (cd "$work/app" && npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error "$work"/tarballs/*.tgz) ||
    fail "npm install"
fi
# As after `npm install -g`: keyward on the PATH, run from another folder.
export PATH="$work/app/node_modules/.bin:$PATH"
[ "$(command -v keyward)" = "$work/app/node_modules/.bin/keyward" ] || fail "the install has no keyward command"
installed="$work/app/node_modules"
if find "$installed/@keyward" -maxdepth 2 -name src | grep -q .; then
  fail "an installed @keyward package holds src/: the test would not prove the dist-only path"
fi
# better-sqlite3 (the API's job store) is native: 13 crashes Node 20, 12 has prebuilt binaries.
sqlite_version=$(find "$installed" -path '*/better-sqlite3/package.json' -exec node -p 'require(process.argv[1]).version' {} \; | sort -u)
case "$sqlite_version" in 12.*) ;; *) fail "better-sqlite3 resolved to '$sqlite_version', not 12.x" ;; esac
(cd "$work/app" && node -e 'new (require("better-sqlite3"))(":memory:").prepare("select 1").get()') ||
  fail "better-sqlite3 $sqlite_version does not load on Node $(node --version)"
# Its install script takes a prebuilt binary when GitHub answers, else compiles (python3, make, g++).
sqlite_binary="prebuilt binary"
if [ -d "$installed/better-sqlite3/build/Release/obj.target" ]; then sqlite_binary="compiled by npm (no prebuilt binary reachable)"; fi
pass "npm install: keyward on the PATH, no src/ in @keyward packages, better-sqlite3 $sqlite_version loads on Node $(node --version) ($sqlite_binary)"

step "starting the second machine (private mount and network namespaces) and its podman API on $socket"
mkdir -p "$work/libpod-tmp" "$work/elsewhere"
# podman and netavark keep some state at fixed paths whatever --root/--runroot say: netavark's
# IPAM database and aardvark-dns's config (/run/containers/networks), network namespaces
# (/run/netns), the lock table (/dev/shm/libpod_lock) and c/image's blob cache
# (/var/lib/containers/cache). Empty tmpfs mounts there, visible in this namespace only, keep the
# main service's untouched; the own network namespace keeps bridges, subnets, firewall rules,
# published ports and 127.0.0.1 apart.
(cd / && exec unshare --mount --net --propagation private sh -c '
  set -e
  for directory in /run/containers/networks /run/netns /dev/shm /var/lib/containers/cache; do
    mkdir -p "$directory"
    mount -t tmpfs -o mode=0755 keyward-e2e-install "$directory"
  done
  chmod 1777 /dev/shm
  ip link set lo up
  touch "$1"
  exec sleep infinity' sh "$work/machine-ready") >"$work/machine.log" 2>&1 &
machine_pid=$!
disown "$machine_pid" # ended by the cleanup, which waits for its namespace to empty
for _ in $(seq 1 100); do [ -e "$work/machine-ready" ] && break; kill -0 "$machine_pid" 2>/dev/null || break; sleep 0.2; done
[ -e "$work/machine-ready" ] || { cat "$work/machine.log" >&2; fail "the second machine's namespaces did not start"; }
[ "$(readlink "/proc/$machine_pid/ns/net")" != "$(readlink /proc/self/ns/net)" ] || fail "the second machine shares this network namespace"
# Its way out (npm for `keyward plugins add`): user-mode networking, no host interface or rule.
slirp4netns --configure --mtu=65520 --disable-host-loopback "$machine_pid" tap0 >"$work/slirp4netns.log" 2>&1 &
slirp_pid=$!
for _ in $(seq 1 50); do in_machine ip -o -4 addr show tap0 2>/dev/null | grep -q inet && break; sleep 0.2; done
in_machine ip -o -4 addr show tap0 2>/dev/null | grep -q inet || { cat "$work/slirp4netns.log" >&2; fail "slirp4netns gave the machine no network"; }

(cd / && exec nsenter --target "$machine_pid" --mount --net -- "${podman_own[@]}" system service --time=0 "unix://$socket") >"$work/podman.log" 2>&1 &
podman_pid=$!
for _ in $(seq 1 150); do ping_socket "$socket" && break; kill -0 "$podman_pid" 2>/dev/null || break; sleep 0.4; done
ping_socket "$socket" || { cat "$work/podman.log" >&2; fail "the second podman service does not answer"; }
images=$(podman_in_machine images --quiet | wc -l)
[ "$images" -eq 0 ] || fail "the second podman has $images images; it must start empty"
pass "second podman service: own machine, no images"

export DOCKER_HOST="unix://$socket" KEYWARD_DATA_DIR="$work/data"
cd "$work/elsewhere"

# Diagnostics: every container's log, kept while the run rolls back (only with KEEP=1).
if [ "${KEEP:-0}" = 1 ]; then
  mkdir -p "$work/container-logs"
  while kill -0 "$podman_pid" 2>/dev/null; do
    for name in $(podman_in_machine ps --all --format '{{.Names}}' 2>/dev/null); do
      podman_in_machine logs "$name" >"$work/container-logs/$name.log" 2>&1 || true
    done
    sleep 3
  done &
fi

step "keyward demo (builds every image it needs in the empty podman)"
demo_started=$(date +%s)
in_machine keyward demo --non-interactive 2>&1 | tee "$work/demo.log" || fail "keyward demo"
passes=$(grep -c 'PASS' "$work/demo.log" || true)
[ "$passes" -eq 6 ] || fail "keyward demo printed $passes PASS lines, not 6"
if grep -q 'FAIL' "$work/demo.log"; then fail "keyward demo printed a FAIL line"; fi
pass "keyward demo: six PASS lines in $(($(date +%s) - demo_started)) s"

# The demo instance runs: its networks are the second service's, and nothing of them reached the host.
demo_networks=$(podman_in_machine network ls --quiet --filter label=keyward.dev/instance=demo)
[ -n "$demo_networks" ] || fail "the second podman has no network labelled for the demo instance"
# shellcheck disable=SC2086 # one argument per network
demo_subnets=$(podman_in_machine network inspect --format '{{range .Subnets}}{{.Subnet}} {{end}}' $demo_networks)
for subnet in $demo_subnets; do
  case "$subnet" in "$subnet_prefix".*) ;; *) fail "the demo's network subnet $subnet is not one of the second service's ($subnet_prefix.x)" ;; esac
done
step "the demo's networks in the second service: $demo_subnets"
if ip -o -4 addr | grep -q " $subnet_prefix\."; then fail "the host's network namespace has a $subnet_prefix.x address"; fi
if grep -rqs "$subnet_prefix\." /run/containers/networks/aardvark-dns; then fail "the host's aardvark-dns config names a $subnet_prefix.x address"; fi
pass "the second service's networks stay in its machine (no $subnet_prefix.x address or DNS entry on the host)"

# What `keyward rm <name>` must leave: no container at all, no network or volume of the instance.
expect_removed() {
  local containers networks volumes
  containers=$(podman_in_machine ps --all --quiet | wc -l)
  networks=$(podman_in_machine network ls --quiet --filter "label=keyward.dev/instance=$1" | wc -l)
  volumes=$(podman_in_machine volume ls --quiet --filter "label=keyward.dev/instance=$1" | wc -l)
  [ "$containers" -eq 0 ] && [ "$networks" -eq 0 ] && [ "$volumes" -eq 0 ] ||
    fail "keyward rm $1 left $containers containers, $networks networks and $volumes volumes of it"
  pass "keyward rm $1: no container, network or volume left"
}

in_machine keyward rm demo || fail "keyward rm demo"
expect_removed demo

step "keyward plugins add (the packed example plugin)"
plugin_tarball=$(ls "$work"/plugin-tarball/*.tgz)
in_machine keyward plugins add "$plugin_tarball" || fail "keyward plugins add"
in_machine keyward plugins ls | tee "$work/plugins.log"
grep -q '✔ keyward-provider-example@.*sidecar greeting' "$work/plugins.log" || fail "plugins ls does not list the example's greeting sidecar"
if grep -q '✖\|FAILED TO LOAD' "$work/plugins.log"; then fail "plugins ls reports a load failure"; fi
in_machine keyward providers | tee "$work/providers.log"
grep -q '^  greeting' "$work/providers.log" || fail "keyward providers does not list greeting"
pass "keyward plugins add, plugins ls and providers: the example's greeting sidecar, no load failure"

step "deploying an instance with the plugin's sidecar"
node_image="localhost/keyward-node-runtime:$(node --version | sed 's/^v//')"
cat >"$work/greeting.yaml" <<SPEC
name: greeting-e2e
target: local
agent:
  image: localhost/keyward-agent-standin:0.1.0
  port: 18789
  skillsDirectory: /home/node/.openclaw/skills
sidecars:
  greeting:
    greeting: Hello from an installed plugin
    image: $node_image
SPEC
in_machine keyward deploy -f "$work/greeting.yaml" || fail "deploying with the plugin's sidecar"
in_machine keyward ls | tee "$work/ls.log"
grep -q '^greeting-e2e .* running ' "$work/ls.log" || fail "keyward ls does not show greeting-e2e running"
in_machine keyward verify greeting-e2e | tee "$work/verify.log" || fail "the self-test of greeting-e2e"
grep -q '✔ greeting-answers (greeting)' "$work/verify.log" || fail "the self-test ran no passing greeting check"
pass "keyward deploy, ls and verify with the plugin's greeting sidecar"
in_machine keyward rm greeting-e2e || fail "keyward rm greeting-e2e"
expect_removed greeting-e2e

if [ "$main_answered" = true ]; then
  ping_socket "$main_socket" || fail "the main podman service ($main_socket) answered before this test and does not now"
  pass "the main podman service still answers"
fi
step "PASSED: installed from npm tarballs, demo and plugin deploy on an empty podman"
