#!/usr/bin/env bash
# `make run`: the stack as local processes, in the foreground; Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-env.sh
scripts/build-images.sh
set -a; source .env; set +a
echo
echo "sandbox manager: http://127.0.0.1:8000  (API docs: /docs, health: /health)"
echo "token:           SANDBOX_MANAGER_TOKEN from .env ($(printf '%s' "$SANDBOX_MANAGER_TOKEN" | cut -c1-6)...)"
echo
cd sandbox_manager
exec ../.venv/bin/uvicorn main:app --host 127.0.0.1 --port "${SANDBOX_MANAGER_PORT:-8000}"
