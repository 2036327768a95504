#!/usr/bin/env bash
# Build the images the tests and `make run` need, reusing what is already built.
# There is no image registry here, so the base is a Debian bookworm made with debootstrap
# and imported; elsewhere pass BASE_IMAGE (e.g. ubuntu:22.04, the Dockerfile default).
set -euo pipefail
cd "$(dirname "$0")/.."

LOCAL_BASE=${LOCAL_BASE:-aios-base:bookworm}
BASE_IMAGE=${BASE_IMAGE:-$LOCAL_BASE}
SANDBOX_IMAGE=${SANDBOX_IMAGE:-aios-sandbox}
export DOCKER_BUILDKIT=0   # the legacy builder needs no buildx plugin and no registry

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

build_local_base() {
  command -v debootstrap >/dev/null || scripts/ensure-packages.sh debootstrap
  local root
  root=$(mktemp -d /var/tmp/aios-base.XXXXXX)
  trap 'rm -rf "$root"' RETURN
  echo "building $LOCAL_BASE with debootstrap (about a minute, once)"
  debootstrap --variant=minbase --include=python3-minimal,python3 bookworm "$root" \
    http://deb.debian.org/debian >/var/tmp/aios-debootstrap.log 2>&1 \
    || { tail -20 /var/tmp/aios-debootstrap.log; exit 1; }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import - "$LOCAL_BASE" >/dev/null
}

if [ "$BASE_IMAGE" = "$LOCAL_BASE" ] && ! have_image "$LOCAL_BASE"; then
  build_local_base
fi

# The sandbox image is rebuilt only when its inputs change. Its Python packages come from the
# host wheelhouse (containers here cannot verify PyPI's TLS).
scripts/make-wheelhouse.sh
SANDBOX_INPUTS=(Dockerfile.sandbox sandbox_manager/runner python-backend/aios/__init__.py
                python-backend/aios/net)
hash=$( (echo "$BASE_IMAGE"
         find "${SANDBOX_INPUTS[@]}" -type f -not -name '*.pyc' | LC_ALL=C sort | xargs cat) \
       | sha256sum | cut -c1-16)
current=$(docker image inspect "$SANDBOX_IMAGE" --format '{{ index .Config.Labels "aios.build-hash" }}' 2>/dev/null || true)
if [ "$current" != "$hash" ]; then
  echo "building $SANDBOX_IMAGE on $BASE_IMAGE (a few minutes the first time)"
  started=$SECONDS
  docker build -q --build-arg BASE_IMAGE="$BASE_IMAGE" --label aios.build-hash="$hash" \
    -t "$SANDBOX_IMAGE" -f Dockerfile.sandbox . >/dev/null
  echo "built $SANDBOX_IMAGE in $((SECONDS - started)) s"
fi
echo "images ready: $SANDBOX_IMAGE (base $BASE_IMAGE)"
