#!/bin/sh
# Entry point of the service images. Started as root only long enough to make the folders in
# AIOS_WRITABLE_DIRS writable and to find the Docker socket's group (its GID differs per host),
# then runs the command as $AIOS_USER with setpriv (util-linux, in every Debian).
set -eu
user=${AIOS_USER:-aios}
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
