#!/usr/bin/env bash
# Sets up a fresh machine for keyward: pnpm, the dependencies, podman and its API
# socket, a build, and the local images. Idempotent: re-running skips what is done.
#
#   bash scripts/setup.sh           what `pnpm demo` needs (about 2 minutes on a fresh machine)
#   bash scripts/setup.sh --tests   also what `pnpm test` needs: the real LiteLLM and OpenTelemetry
#                                   Collector images, a real kube-apiserver/etcd/controller-manager
#                                   built from Go modules, Chromium for the UI tests, nginx and wrk
#                                   for the proxy soak, schemathesis for the API fuzz test, tcpdump,
#                                   and Debian's Docker engine beside podman (`pnpm test:docker`). Cold, that
#                                   is 20–45 minutes of builds (once per machine, cached outside
#                                   the checkout in ~/.cache/keyward); warm, seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

for_tests=false
for argument in "$@"; do
  case "$argument" in
    --tests) for_tests=true ;;
    *)
      echo "setup: unknown option $argument (use --tests for what pnpm test needs)" >&2
      exit 2
      ;;
  esac
done

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

# The control plane build is the longest step and needs no podman: start it first, in the
# background, and wait for it at the end.
control_plane_pid=
if [ "$for_tests" = true ]; then
  say "building a Kubernetes control plane for the tests in the background (log: /tmp/keyward-control-plane-build.log)"
  bash scripts/k8s/build-control-plane.sh >/tmp/keyward-control-plane-build.log 2>&1 &
  control_plane_pid=$!
fi

say "building packages"
pnpm build >&2

say "building local images"
pnpm images tokenizer agentStandIn demoUpstream networkHelper >&2

if [ "$for_tests" = true ]; then
  sudo_prefix=""
  if [ "$(id -u)" -ne 0 ]; then sudo_prefix="sudo"; fi
  # The web UI's end-to-end tests drive Debian's Chromium through playwright-core
  # (`npx playwright install` cannot download browsers on these machines).
  if [ ! -x /usr/bin/chromium ]; then
    say "installing Chromium (Debian) for the UI tests"
    $sudo_prefix apt-get update >&2
    DEBIAN_FRONTEND=noninteractive $sudo_prefix apt-get install -y chromium >&2
  fi
  # The npm install test (pnpm test:install): a second podman in namespaces of its own
  # (unshare, nsenter, ip, slirp4netns), and npm compiling better-sqlite3 where its prebuilt
  # binary cannot be downloaded (python3, make, g++).
  install_test_packages=()
  for command_and_package in slirp4netns:slirp4netns unshare:util-linux nsenter:util-linux ip:iproute2 \
    curl:curl python3:python3 make:make g++:g++; do
    command -v "${command_and_package%%:*}" >/dev/null 2>&1 || install_test_packages+=("${command_and_package#*:}")
  done
  if [ "${#install_test_packages[@]}" -gt 0 ]; then
    say "installing ${install_test_packages[*]} (Debian) for the npm install test"
    $sudo_prefix apt-get update >&2
    DEBIAN_FRONTEND=noninteractive $sudo_prefix apt-get install -y "${install_test_packages[@]}" >&2
  fi
  # The proxy soak test drives keyward-tokenizer with wrk against an nginx TLS upstream.
  if [ ! -x /usr/sbin/nginx ] || [ ! -x /usr/bin/wrk ]; then
    say "installing nginx-light and wrk (Debian) for the proxy soak test"
    sudo_prefix=""
    if [ "$(id -u)" -ne 0 ]; then sudo_prefix="sudo"; fi
    $sudo_prefix apt-get update >&2
    DEBIAN_FRONTEND=noninteractive $sudo_prefix apt-get install -y nginx-light wrk >&2
  fi
  say "installing schemathesis (PyPI, hash-pinned) for the API fuzz test"
  bash scripts/schemathesis/install-schemathesis.sh >/dev/null
  # The host-side DNS capture of the isolation tests (no query of the agent leaves the host).
  if ! command -v tcpdump >/dev/null 2>&1; then
    say "installing tcpdump (Debian) for the host-side DNS capture"
    sudo_prefix=""
    if [ "$(id -u)" -ne 0 ]; then sudo_prefix="sudo"; fi
    DEBIAN_FRONTEND=noninteractive $sudo_prefix apt-get install -y --no-install-recommends tcpdump >&2 ||
      { $sudo_prefix apt-get update >&2 && DEBIAN_FRONTEND=noninteractive $sudo_prefix apt-get install -y --no-install-recommends tcpdump >&2; }
  fi
  # `pnpm test:docker` runs provider-local's integration suite on a Docker engine too: Debian's
  # docker.io, beside podman (scripts/docker/start-docker.sh), with the same local images.
  say "starting a Docker engine beside podman and building the local images into it"
  docker_host=$(sh scripts/docker/start-docker.sh | sed -n 's/^export DOCKER_HOST=//p')
  DOCKER_HOST="$docker_host" pnpm images tokenizer agentStandIn demoUpstream networkHelper >&2
  say "building the real OpenTelemetry Collector and LiteLLM images (minutes when cold)"
  pnpm images otelCollector litellm >&2
  say "waiting for the control plane build"
  if ! wait "$control_plane_pid"; then
    tail -n 30 /tmp/keyward-control-plane-build.log >&2
    echo "setup: building the Kubernetes control plane failed; see /tmp/keyward-control-plane-build.log" >&2
    exit 1
  fi
fi

say "done. Podman API: $DOCKER_HOST"
