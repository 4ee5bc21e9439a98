#!/bin/sh
# Stops the dockerd that scripts/docker/start-docker.sh started (by its pid file, nothing else);
# its managed containerd stops with it. Images and volumes stay in its data root for the next
# start. dockerd leaves its iptables chains behind (they match only its own bridges, and the
# next start reuses them).
set -eu

exec_root=${KEYWARD_DOCKER_EXEC_ROOT:-/run/keyward-docker}
pid_file="$exec_root/dockerd.pid"

if [ ! -f "$pid_file" ]; then
  echo "stop-docker: no pid file at $pid_file; nothing to stop" >&2
  exit 0
fi
pid=$(cat "$pid_file")
if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
  echo "stop-docker: dockerd (pid ${pid:-?}) is not running" >&2
  rm -f "$pid_file"
  exit 0
fi
kill "$pid"
attempts=0
while kill -0 "$pid" 2>/dev/null; do
  attempts=$((attempts + 1))
  if [ "$attempts" -ge 150 ]; then
    echo "stop-docker: dockerd (pid $pid) did not stop within 30 s" >&2
    exit 1
  fi
  sleep 0.2
done
echo "stop-docker: dockerd (pid $pid) stopped" >&2
