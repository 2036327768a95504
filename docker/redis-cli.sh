#!/bin/sh
# redis-cli with the stack's password (installed as /usr/local/bin/redis-cli, ahead of
# Debian's in PATH): REDISCLI_AUTH from the secrets volume that compose mounts
# (AIOS_SECRETS_DIR), else as the environment has it. So the health check and
# `docker-compose exec redis redis-cli ...` work with no password typed or shown.
if [ -n "${AIOS_SECRETS_DIR:-}" ] && [ -s "$AIOS_SECRETS_DIR/REDIS_PASSWORD" ]; then
  REDISCLI_AUTH=$(cat "$AIOS_SECRETS_DIR/REDIS_PASSWORD")
  export REDISCLI_AUTH
fi
exec /usr/bin/redis-cli "$@"
