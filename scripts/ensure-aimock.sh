#!/usr/bin/env bash
# Install the pinned @copilotkit/aimock (tests/aimock/package-lock.json) that the cross-check
# tests run; a no-op when tests/aimock/node_modules is already newer than the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null 2>&1 || scripts/ensure-packages.sh nodejs npm
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || { echo "aimock needs Node >= 20.15, found $(node --version)" >&2; exit 1; }
cd tests/aimock
# npm writes node_modules/.package-lock.json at the end of an install: its age is the install's.
marker=node_modules/.package-lock.json
[ -f "$marker" ] && [ ! package-lock.json -nt "$marker" ] && exit 0
echo "installing @copilotkit/aimock (npm ci in tests/aimock)"
npm ci --no-audit --no-fund --loglevel=error
touch "$marker"
