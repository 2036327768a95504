#!/bin/sh
# Entry point of the aios-redis image: `redis-server ...` asks every client for REDIS_PASSWORD
# (required), which reaches it on its standard input as a config file ('-'): on no command
# line (not in `ps` on the host). Any other command runs as it is.
set -eu
if [ "${1:-}" = redis-server ]; then
  shift
  if [ -z "${REDIS_PASSWORD:-}" ]; then
    echo "aios-redis: REDIS_PASSWORD is required (scripts/ensure-env.sh generates it into .env)" >&2
    exit 2
  fi
  escaped=$(printf '%s' "$REDIS_PASSWORD" | sed 's/[\\"]/\\&/g')
  exec redis-server - "$@" <<CONF
requirepass "$escaped"
CONF
fi
exec "$@"
