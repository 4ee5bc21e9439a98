#!/bin/sh
# Installs podman if missing, starts its Docker-compatible API socket in the
# background with the repo's containers.conf, waits until it answers /_ping, and
# prints the DOCKER_HOST line to eval:  eval "$(scripts/ci/start-podman.sh)"
# Idempotent: a socket that already answers is left alone.
set -eu

script_directory=$(cd "$(dirname "$0")" && pwd)
socket_path=${KEYWARD_PODMAN_SOCKET:-/run/keyward-podman.sock}
log_file=${KEYWARD_PODMAN_LOG:-/tmp/keyward-podman-service.log}
export CONTAINERS_CONF="$script_directory/containers.conf"

log() { echo "start-podman: $*" >&2; }

ping_socket() {
  [ -S "$socket_path" ] || return 1
  if command -v curl >/dev/null 2>&1; then
    curl -fsS --max-time 2 --unix-socket "$socket_path" http://d/_ping >/dev/null 2>&1
  else
    node -e '
      const http = require("node:http");
      const request = http.get({ socketPath: process.argv[1], path: "/_ping", timeout: 2000 }, (response) => {
        process.exit(response.statusCode === 200 ? 0 : 1);
      });
      request.on("error", () => process.exit(1));
      request.on("timeout", () => process.exit(1));
    ' "$socket_path"
  fi
}

if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
  log "installing podman (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y podman runc uidmap slirp4netns >&2
fi

# A service started from a directory that was removed since (an old checkout) answers
# pings but fails every container start ("conmon: Failed to get working directory").
for pid in $(pgrep -f "podman system service.*unix://$socket_path" 2>/dev/null); do
  case "$(readlink "/proc/$pid/cwd" 2>/dev/null)" in
    *"(deleted)")
      log "restarting the podman API service: its working directory was removed"
      kill "$pid" 2>/dev/null || true
      sleep 1
      rm -f "$socket_path"
      ;;
  esac
done

if ping_socket; then
  log "podman API already answers on $socket_path"
else
  rm -f "$socket_path"
  log "starting podman system service on $socket_path (log: $log_file)"
  # From /: conmon inherits the working directory, and a deleted one (a removed checkout) breaks every container start.
  (cd / && nohup podman system service --time=0 "unix://$socket_path" >"$log_file" 2>&1 &)
  attempts=0
  until ping_socket; do
    attempts=$((attempts + 1))
    if [ "$attempts" -ge 100 ]; then
      log "podman API did not answer on $socket_path after 20 s; see $log_file"
      tail -n 20 "$log_file" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  log "podman API ready"
fi

echo "export DOCKER_HOST=unix://$socket_path"
echo "export CONTAINERS_CONF=$CONTAINERS_CONF"
