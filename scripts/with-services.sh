#!/usr/bin/env bash
# Run a command with the services the project needs (dockerd), starting what is not
# running and stopping, afterwards, only what this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-packages.sh docker.io redis-server debootstrap chromium ffmpeg

started_dockerd=""
stop_services() {
  if [ -n "$started_dockerd" ]; then
    kill "$started_dockerd" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$started_dockerd" 2>/dev/null || break; sleep 0.2; done
  fi
}
trap stop_services EXIT

if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd (log: /var/log/aios-dockerd.log)"
  setsid dockerd >/var/log/aios-dockerd.log 2>&1 < /dev/null &
  started_dockerd=$!
  for _ in $(seq 150); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
  docker info >/dev/null 2>&1 || { tail -20 /var/log/aios-dockerd.log; exit 1; }
fi

"$@"
