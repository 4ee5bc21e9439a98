#!/bin/sh
# `pnpm test:rootless`: provider-local's proxy-only and open-mode integration files on rootless
# podman and on rootless docker (scripts/rootless/start-rootless-runtimes.sh), with the local
# images built into each. Not part of `pnpm test`: see the README's "Runtimes".
set -eu
cd "$(dirname "$0")/../.."

sockets=$(sh scripts/rootless/start-rootless-runtimes.sh)
podman_socket=$(echo "$sockets" | sed -n 1p)
docker_socket=$(echo "$sockets" | sed -n 2p)
files="test/deploy-proxy-only test/open-mode-and-conformance"

for socket in "$podman_socket" "$docker_socket"; do
  echo "run-rootless-tests: building the local images into unix://$socket" >&2
  DOCKER_HOST="unix://$socket" pnpm images tokenizer agentStandIn demoUpstream networkHelper >&2
done

status=0
echo "run-rootless-tests: rootless podman (unix://$podman_socket)" >&2
# shellcheck disable=SC2086 # the file filters are separate arguments
KEYWARD_TEST_RUNTIME=podman DOCKER_HOST="unix://$podman_socket" \
  pnpm vitest run --project 'provider-local:integration' --no-file-parallelism $files || status=1
echo "run-rootless-tests: rootless docker (unix://$docker_socket)" >&2
# shellcheck disable=SC2086
KEYWARD_TEST_RUNTIME=docker KEYWARD_DOCKER_SOCKET="$docker_socket" \
  pnpm vitest run --project 'provider-local:integration' --no-file-parallelism $files || status=1
exit "$status"
