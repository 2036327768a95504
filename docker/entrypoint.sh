#!/bin/sh
# Entry point of the service images. Started as root only long enough to make the folders in
# AIOS_WRITABLE_DIRS writable and to find the Docker socket's group (its GID differs per host),
# then runs the command as $AIOS_USER with setpriv (util-linux, in every Debian).
#
# Secrets (compose): AIOS_SECRETS_DIR is a volume of files named as the variables
# (AIOS_API_TOKEN, SECRET_KEY, SANDBOX_MANAGER_TOKEN, FLOWER_BASIC_AUTH, REDIS_PASSWORD).
# - `aios-entrypoint aios-make-secrets` (compose's one-shot service `secrets`, as root) writes
#   each: the env file's value when it has one (it wins), else the file already there (kept
#   across restarts), else a new random one. Names what it did, never a value.
# - Any other command: a variable that is not set at all is read from its file (the
#   environment, even blank, wins), and the password goes into redis:// URLs that carry none.
set -eu
user=${AIOS_USER:-aios}
secrets_dir=${AIOS_SECRETS_DIR:-}
SECRET_NAMES="AIOS_API_TOKEN SECRET_KEY SANDBOX_MANAGER_TOKEN FLOWER_BASIC_AUTH REDIS_PASSWORD"
GUIDE_SECRET_KEY=your-secret-key-here   # the design guide's placeholder: not a secret

if [ "${1:-}" = aios-make-secrets ]; then
  [ -n "$secrets_dir" ] || { echo "aios-make-secrets: AIOS_SECRETS_DIR is not set" >&2; exit 2; }
  mkdir -p "$secrets_dir"
  chmod 755 "$secrets_dir"
  made="" kept="" taken=""
  for name in $SECRET_NAMES; do
    eval "value=\${$name:-}"
    [ "$name" != SECRET_KEY ] || [ "$value" != "$GUIDE_SECRET_KEY" ] || value=""
    file=$secrets_dir/$name
    if [ -n "$value" ]; then
      taken="$taken $name"
      [ -f "$file" ] && [ "$(cat "$file")" = "$value" ] && continue
    elif [ -s "$file" ]; then
      kept="$kept $name"
      continue
    else
      # URL-safe (letters, digits, - and _): REDIS_PASSWORD goes into redis:// URLs as it is.
      value=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
      [ "$name" != FLOWER_BASIC_AUTH ] || value=admin:$value
      made="$made $name"
    fi
    # Readable by the stack's services (each runs as its own user); the volume is mounted
    # in nothing else.
    (umask 022 && printf '%s' "$value" > "$file.new")
    chmod 444 "$file.new"
    mv -f "$file.new" "$file"
  done
  echo "aios-make-secrets: $secrets_dir: generated:${made:- none}; kept:${kept:- none};" \
       "from the env file:${taken:- none}"
  exit 0
fi

if [ -n "$secrets_dir" ] && [ -d "$secrets_dir" ]; then
  for name in $SECRET_NAMES; do
    file=$secrets_dir/$name
    [ -r "$file" ] || continue
    eval "given=\${$name+set}"
    if [ "$name" = SECRET_KEY ] && [ "${SECRET_KEY:-}" = "$GUIDE_SECRET_KEY" ]; then
      given=""   # the guide's placeholder: the generated one instead
    fi
    [ -n "$given" ] || export "$name=$(cat "$file")"
  done
  if [ -n "${REDIS_PASSWORD:-}" ]; then
    for name in REDIS_URL CELERY_BROKER_URL CELERY_RESULT_BACKEND; do
      eval "url=\${$name:-}"
      case $url in
        redis://*@*|rediss://*@*) ;;   # credentials of its own: as it is
        redis://*|rediss://*) export "$name=${url%%://*}://:$REDIS_PASSWORD@${url#*://}" ;;
      esac
    done
  fi
  if [ "${1:-}" = gunicorn ]; then   # the web: where to read the token, never the token
    echo "aios: the API token (AIOS_API_TOKEN: REST bearer, Socket.IO auth) is in the env" \
         "file if set there, else generated on first start; read it with:" \
         "docker-compose exec web cat $secrets_dir/AIOS_API_TOKEN"
  fi
fi

[ "$(id -u)" = 0 ] || exec "$@"   # started unprivileged already (docker run --user ...)

uid=$(id -u "$user")
gid=$(id -g "$user")
as_user() { setpriv --reuid="$uid" --regid="$gid" --clear-groups "$@"; }

for dir in ${AIOS_WRITABLE_DIRS:-}; do
  mkdir -p "$dir"
  # A bind-mounted host folder (./tmp) is handed to the service user once.
  as_user test -w "$dir" || chown -R "$uid:$gid" "$dir"
done

groups=--clear-groups
sock=${DOCKER_SOCKET:-/var/run/docker.sock}
if [ -S "$sock" ]; then
  sock_gid=$(stat -c %g "$sock")
  if setpriv --reuid="$uid" --regid="$gid" --groups="$sock_gid" test -w "$sock"; then
    groups=--groups=$sock_gid
  else
    echo "entrypoint: $sock (mode $(stat -c %a "$sock"), group $sock_gid) is not writable" \
         "through its group: running as root" >&2
    exec "$@"
  fi
fi
exec setpriv --reuid="$uid" --regid="$gid" "$groups" --no-new-privs -- "$@"
