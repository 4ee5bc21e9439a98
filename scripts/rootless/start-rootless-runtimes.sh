#!/bin/sh
# Rootless podman and rootless docker for the isolation tests, as an unprivileged user
# (keyward-rootless, created with subordinate ids if missing): podman's API service and
# dockerd-rootless.sh (rootlesskit + slirp4netns) on sockets under the user's runtime directory.
# Idempotent: a socket that already answers is left alone. Needs root (it creates the user and
# installs rootlesskit); the tests, run as root, talk to both sockets.
#   sh scripts/rootless/start-rootless-runtimes.sh    prints the two sockets, one per line
set -eu

script_directory=$(cd "$(dirname "$0")" && pwd)
user=${KEYWARD_ROOTLESS_USER:-keyward-rootless}

log() { echo "start-rootless-runtimes: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  log "run as root: it creates the user $user and starts its runtimes"
  exit 1
fi

ping_socket() {
  [ -S "$1" ] && curl -fsS --max-time 2 --unix-socket "$1" http://d/_ping >/dev/null 2>&1
}

wait_for() {
  attempts=0
  until ping_socket "$1"; do
    attempts=$((attempts + 1))
    if [ "$attempts" -ge 300 ]; then
      log "$2 did not answer on $1 after 60 s; see $3"
      tail -n 20 "$3" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
}

missing=""
command -v podman >/dev/null 2>&1 || missing="$missing podman runc uidmap slirp4netns"
command -v dockerd >/dev/null 2>&1 || missing="$missing docker.io"
command -v rootlesskit >/dev/null 2>&1 || missing="$missing rootlesskit"
command -v newuidmap >/dev/null 2>&1 || missing="$missing uidmap"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
if [ -n "$missing" ]; then
  log "installing$missing (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  # shellcheck disable=SC2086 # one word per package
  apt-get install -y --no-install-recommends $missing >&2
fi

if ! id "$user" >/dev/null 2>&1; then
  log "creating user $user"
  useradd --create-home --shell /bin/sh "$user"
fi
# Subordinate ids for the user namespace (useradd adds them on Debian; older accounts may lack them).
grep -q "^$user:" /etc/subuid || echo "$user:200000:65536" >>/etc/subuid
grep -q "^$user:" /etc/subgid || echo "$user:200000:65536" >>/etc/subgid

uid=$(id -u "$user")
home=$(getent passwd "$user" | cut -d: -f6)
runtime_directory="/run/user/$uid"
mkdir -p "$runtime_directory"
chown "$user:$user" "$runtime_directory"
chmod 700 "$runtime_directory"
# Rootless podman on these VMs: runc, cgroupfs (no systemd user session), equal ulimits.
install -d -o "$user" -g "$user" "$home/.config" "$home/.config/containers"
install -o "$user" -g "$user" -m 0644 "$script_directory/containers.conf" "$home/.config/containers/containers.conf"

as_user() {
  # From /: a deleted working directory must not be inherited.
  su -s /bin/sh "$user" -c "cd / && export XDG_RUNTIME_DIR=$runtime_directory HOME=$home PATH=/usr/share/docker.io/contrib:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin && $1"
}

podman_socket="$runtime_directory/podman/podman.sock"
podman_log=/tmp/keyward-rootless-podman.log
if ping_socket "$podman_socket"; then
  log "rootless podman already answers on $podman_socket"
else
  log "starting rootless podman's API on $podman_socket (log: $podman_log)"
  as_user "mkdir -p $runtime_directory/podman && rm -f $podman_socket && nohup podman system service --time=0 unix://$podman_socket >$podman_log 2>&1 &"
  wait_for "$podman_socket" "rootless podman" "$podman_log"
fi

docker_socket="$runtime_directory/docker.sock"
docker_log=/tmp/keyward-rootless-docker.log
if ping_socket "$docker_socket"; then
  log "rootless docker already answers on $docker_socket"
else
  log "starting rootless dockerd (dockerd-rootless.sh) on $docker_socket (log: $docker_log)"
  as_user "rm -f $docker_socket && nohup dockerd-rootless.sh --data-root $home/.local/share/docker --host unix://$docker_socket >$docker_log 2>&1 &"
  wait_for "$docker_socket" "rootless dockerd" "$docker_log"
fi

echo "$podman_socket"
echo "$docker_socket"
