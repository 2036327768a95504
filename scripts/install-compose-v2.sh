#!/usr/bin/env bash
# Docker Compose v2 beside bookworm's docker-compose 1.29, for the smokes (issue #19): the
# standalone binary of Debian trixie's docker-compose package, verified down the archive's
# chain of trust (InRelease signed by keys bookworm's debian-archive-keyring holds -> the
# Packages.xz hash -> the .deb hash) and unpacked with dpkg-deb -x into a cache outside the
# repository. Not installed: that package would replace bookworm's v1, and nothing goes into
# /usr/libexec/docker/cli-plugins (the smokes call the binary by its path, which runs it as
# a standalone `docker-compose`). A no-op once cached. Prints the binary's path on stdout.
set -euo pipefail

MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=trixie
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
default_dir=/var/cache/aios/compose-v2
[ "$(id -u)" -eq 0 ] || default_dir=${XDG_CACHE_HOME:-$HOME/.cache}/aios/compose-v2
CACHE=${AIOS_COMPOSE_V2_DIR:-$default_dir}
bin=$CACHE/current/usr/libexec/docker/cli-plugins/docker-compose

if [ -x "$bin" ] && "$bin" version --short >/dev/null 2>&1; then
  echo "$bin"; exit 0
fi

mkdir -p "$CACHE"
tmp=$(mktemp -d "$CACHE/.partial.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fetch() { curl -fsSL --retry 3 -o "$2" "$MIRROR/$1"; }
check_sha256() {  # FILE HASH
  echo "$2  $1" | sha256sum -c --quiet - >&2 || { echo "$1: SHA256 mismatch" >&2; exit 1; }
}

# Only what gpgv has verified is read (--output), never the fetched file's own text.
fetch "dists/$SUITE/InRelease" "$tmp/InRelease"
gpgv --quiet --keyring "$KEYRING" --output "$tmp/Release" "$tmp/InRelease" 2>"$tmp/gpgv.log" \
  || { cat "$tmp/gpgv.log" >&2; echo "$SUITE's InRelease: signature not verified" >&2; exit 1; }
packages_sha=$(awk '/^SHA256:/ {in_sha = 1; next} /^[^ ]/ {in_sha = 0}
  in_sha && $3 == "main/binary-amd64/Packages.xz" {print $1}' "$tmp/Release")
[ -n "$packages_sha" ] || { echo "no Packages.xz in $SUITE's Release" >&2; exit 1; }

fetch "dists/$SUITE/main/binary-amd64/Packages.xz" "$tmp/Packages.xz"
check_sha256 "$tmp/Packages.xz" "$packages_sha"
read -r version filename deb_sha < <(xz -dc "$tmp/Packages.xz" | awk -v RS= -F '\n' '
  $1 == "Package: docker-compose" {
    for (i = 1; i <= NF; i++) { split($i, kv, ": "); f[kv[1]] = kv[2] }
    print f["Version"], f["Filename"], f["SHA256"]; exit }')
[[ $version == 2.* ]] || { echo "$SUITE's docker-compose is '$version', not v2" >&2; exit 1; }

fetch "$filename" "$tmp/compose.deb"
check_sha256 "$tmp/compose.deb" "$deb_sha"
dpkg-deb -x "$tmp/compose.deb" "$tmp/root"
"$tmp/root/usr/libexec/docker/cli-plugins/docker-compose" version --short >/dev/null

# Atomic: a concurrent run or an interrupted one never leaves a half-unpacked `current`.
if ! "$CACHE/$version/usr/libexec/docker/cli-plugins/docker-compose" version --short >/dev/null 2>&1; then
  rm -rf "${CACHE:?}/$version"
  mv "$tmp/root" "$CACHE/$version"
fi
ln -sfn "$version" "$tmp/current" && mv -T "$tmp/current" "$CACHE/current"
echo "docker-compose $version (Debian $SUITE, verified) unpacked in $CACHE/$version" >&2
echo "$bin"
