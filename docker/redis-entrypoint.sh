#!/bin/sh
# Entry point of the aios-redis image: `redis-server ...` asks every client for REDIS_PASSWORD
# (required: the file $AIOS_SECRETS_DIR/REDIS_PASSWORD that compose's one-shot `secrets`
# writes, which follows the env file's value; else the environment's), which reaches it on
# its standard input as a config file ('-'): on no command line (not in `ps` on the host).
# Any other command runs as it is.
set -eu
if [ -n "${AIOS_SECRETS_DIR:-}" ] && [ -s "$AIOS_SECRETS_DIR/REDIS_PASSWORD" ]; then
  REDIS_PASSWORD=$(cat "$AIOS_SECRETS_DIR/REDIS_PASSWORD")
fi
if [ "${1:-}" = redis-server ]; then
  shift
  if [ -z "${REDIS_PASSWORD:-}" ]; then
    echo "aios-redis: REDIS_PASSWORD is required (compose's secrets service generates it;" \
         "natively scripts/ensure-env.sh)" >&2
    exit 2
  fi
  escaped=$(printf '%s' "$REDIS_PASSWORD" | sed 's/[\\"]/\\&/g')
  exec redis-server - "$@" <<CONF
requirepass "$escaped"
CONF
fi
exec "$@"
