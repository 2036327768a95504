#!/usr/bin/env bash
# Debian's prometheus server (tests/integration/test_metrics.py starts its own from it), once.
# Its package would start a server of its own at install (:9090, scraping this host): a
# policy-rc.d that refuses service starts keeps that from happening, where none is set.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v prometheus >/dev/null && exit 0
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ] && [ "$(id -u)" -eq 0 ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi
scripts/ensure-packages.sh prometheus
