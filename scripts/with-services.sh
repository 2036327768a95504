#!/usr/bin/env bash
# Run a command with the services the project needs (dockerd), starting what is not
# running and stopping, afterwards, only what this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-packages.sh docker.io redis-server debootstrap chromium ffmpeg
scripts/ensure-prometheus.sh  # the metrics test's Prometheus server

# Several runs share one dockerd (the machine is shared): each holds a shared lock while it
# runs, and the run that started dockerd stops it only if no other run holds one; none
# starts a second dockerd while one is still running (busy, or stopping).
exec 9>>/tmp/aios-with-services.lock
flock -s 9
started_dockerd=""
stop_services() {
  if [ -n "$started_dockerd" ] && flock -u 9 && flock -n -x 9; then
    kill "$started_dockerd" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$started_dockerd" 2>/dev/null || break; sleep 0.2; done
  fi
}
trap stop_services EXIT

for _ in $(seq 150); do
  docker info >/dev/null 2>&1 && break
  if [ -z "$started_dockerd" ] && ! pgrep -x dockerd >/dev/null; then
    echo "starting dockerd (log: /var/log/aios-dockerd.log)"
    setsid dockerd >/var/log/aios-dockerd.log 2>&1 < /dev/null 9>&- &
    started_dockerd=$!
  fi
  sleep 0.2
done
docker info >/dev/null 2>&1 || { tail -20 /var/log/aios-dockerd.log; exit 1; }

"$@"
