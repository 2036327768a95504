#!/usr/bin/env bash
# Build the images the tests and `make run` need, reusing what is already built.
# There is no image registry here, so the base is a Debian bookworm made with debootstrap
# and imported; elsewhere pass BASE_IMAGE (e.g. ubuntu:22.04, the Dockerfile default).
set -euo pipefail
cd "$(dirname "$0")/.."

LOCAL_BASE=${LOCAL_BASE:-aios-base:bookworm}
BASE_IMAGE=${BASE_IMAGE:-$LOCAL_BASE}
SANDBOX_IMAGE=${SANDBOX_IMAGE:-aios-sandbox}
BROWSER_IMAGE=${BROWSER_IMAGE:-aios-browser}
# The browser needs Debian's `chromium` package (Ubuntu ships Chromium only as a snap): the
# local bookworm here, Debian's own image when another BASE_IMAGE is given.
if [ "$BASE_IMAGE" = "$LOCAL_BASE" ]; then
  BROWSER_BASE_IMAGE=${BROWSER_BASE_IMAGE:-$LOCAL_BASE}
else
  BROWSER_BASE_IMAGE=${BROWSER_BASE_IMAGE:-debian:bookworm-slim}
fi
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

if { [ "$BASE_IMAGE" = "$LOCAL_BASE" ] || [ "$BROWSER_BASE_IMAGE" = "$LOCAL_BASE" ]; } \
    && ! have_image "$LOCAL_BASE"; then
  build_local_base
fi

# Each image is rebuilt only when its inputs change (a hash of them, its base image's name
# included, in the label aios.build-hash). Their Python packages come from the host
# wheelhouse (containers here cannot verify PyPI's TLS).
build_if_changed() {  # IMAGE DOCKERFILE BASE INPUT...
  local image=$1 dockerfile=$2 base=$3 hash current started
  shift 3
  hash=$( (echo "$base"
           find "$dockerfile" "$@" -type f -not -name '*.pyc' | LC_ALL=C sort | xargs cat) \
         | sha256sum | cut -c1-16)
  current=$(docker image inspect "$image" --format '{{ index .Config.Labels "aios.build-hash" }}' 2>/dev/null || true)
  if [ "$current" != "$hash" ]; then
    echo "building $image on $base (a few minutes the first time)"
    started=$SECONDS
    # --force-rm: a failed or interrupted build leaves no intermediate container behind
    docker build -q --force-rm --build-arg BASE_IMAGE="$base" --label aios.build-hash="$hash" \
      -t "$image" -f "$dockerfile" . >/dev/null
    echo "built $image in $((SECONDS - started)) s"
  fi
}

scripts/make-wheelhouse.sh
build_if_changed "$SANDBOX_IMAGE" Dockerfile.sandbox "$BASE_IMAGE" \
  sandbox_manager/runner python-backend/aios/__init__.py python-backend/aios/net
# The browser: its supervisor, and the runner's attest report it reuses.
build_if_changed "$BROWSER_IMAGE" Dockerfile.browser "$BROWSER_BASE_IMAGE" \
  sandbox_manager/browser sandbox_manager/runner/aios_attest.py \
  sandbox_manager/runner/aios_files.py
echo "images ready: $SANDBOX_IMAGE (base $BASE_IMAGE), $BROWSER_IMAGE (base $BROWSER_BASE_IMAGE)"
