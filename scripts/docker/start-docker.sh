#!/bin/sh
# Installs Debian's Docker engine (docker.io: dockerd 20.10, containerd, the runc podman uses
# too) if missing, starts dockerd beside podman without touching it, waits until its API
# answers /_ping, and prints the DOCKER_HOST line to eval:
#   eval "$(sh scripts/docker/start-docker.sh)"
# Idempotent: a socket that already answers is left alone. `pnpm test:docker` runs it first.
#
# Beside podman: its own data root, exec root (its own managed containerd), socket and pid
# file. dockerd adds iptables chains of its own (DOCKER, DOCKER-ISOLATION-*, DOCKER-USER) and
# sets the FORWARD policy to DROP only when it has to turn IPv4 forwarding on itself; netavark
# turns forwarding on at podman's first container anyway, so it is turned on here first and
# the policy stays as it was (podman's containers keep their networking either way: netavark
# accepts its own subnets in NETAVARK_FORWARD). Stop it with scripts/docker/stop-docker.sh.
set -eu

socket_path=${KEYWARD_DOCKER_SOCKET:-/run/keyward-docker.sock}
data_root=${KEYWARD_DOCKER_DATA_ROOT:-/var/lib/keyward-docker}
exec_root=${KEYWARD_DOCKER_EXEC_ROOT:-/run/keyward-docker}
log_file=${KEYWARD_DOCKER_LOG:-/tmp/keyward-docker-engine.log}
pid_file="$exec_root/dockerd.pid"

log() { echo "start-docker: $*" >&2; }

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

if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    log "dockerd is missing and installing it needs root: run as root, or sudo apt-get install -y docker.io"
    exit 1
  fi
  log "installing Debian's docker.io (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  # No recommends: apparmor, git and needrestart are not needed to run containers.
  apt-get install -y --no-install-recommends docker.io >&2
fi

if ping_socket; then
  log "docker API already answers on $socket_path"
else
  if [ "$(id -u)" -ne 0 ]; then
    log "starting dockerd needs root here (rootful engine); run this script as root"
    exit 1
  fi
  # A dockerd of ours that no longer answers (or died and left its pid file) is replaced.
  if [ -f "$pid_file" ]; then
    old_pid=$(cat "$pid_file")
    if [ -n "$old_pid" ] && kill -0 "$old_pid" 2>/dev/null; then
      log "dockerd (pid $old_pid) does not answer on $socket_path; stopping it"
      kill "$old_pid" 2>/dev/null || true
      attempts=0
      while kill -0 "$old_pid" 2>/dev/null && [ "$attempts" -lt 100 ]; do
        attempts=$((attempts + 1))
        sleep 0.2
      done
    fi
    rm -f "$pid_file"
  fi
  if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != 1 ]; then
    log "turning on IPv4 forwarding first, as netavark does (dockerd would otherwise set the FORWARD policy to DROP)"
    echo 1 >/proc/sys/net/ipv4/ip_forward
  fi
  mkdir -p "$data_root" "$exec_root"
  rm -f "$socket_path"
  log "starting dockerd on $socket_path (data: $data_root, log: $log_file)"
  # From /: a deleted working directory (a removed checkout) must not be inherited.
  (cd / && nohup dockerd \
    --data-root "$data_root" \
    --exec-root "$exec_root" \
    --pidfile "$pid_file" \
    --host "unix://$socket_path" \
    >"$log_file" 2>&1 &)
  attempts=0
  until ping_socket; do
    attempts=$((attempts + 1))
    if [ "$attempts" -ge 300 ]; then
      log "dockerd did not answer on $socket_path after 60 s; see $log_file"
      tail -n 20 "$log_file" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  log "docker API ready (FORWARD policy: $(iptables -S FORWARD 2>/dev/null | head -n 1 || echo unknown))"
fi

echo "export DOCKER_HOST=unix://$socket_path"
