#!/usr/bin/env bash
# `make run`: the whole stack as local processes, in the foreground; Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-env.sh
scripts/build-images.sh
set -a; source .env; set +a
: "${REDIS_URL:=redis://127.0.0.1:6379/0}"
: "${SANDBOX_MANAGER_URL:=http://127.0.0.1:8000}"
export REDIS_URL SANDBOX_MANAGER_URL
BIN=$PWD/.venv/bin
pids=()
stop_all() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_all EXIT INT TERM
start() { "$@" & pids+=($!); }

redis_port=$(python3 -c "from urllib.parse import urlparse; print(urlparse('$REDIS_URL').port or 6379)")
if ! redis-cli -p "$redis_port" ping >/dev/null 2>&1; then
  mkdir -p .run/redis
  # AOF and noeviction: accepted tasks survive a restart, and the broker never drops keys.
  start redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$PWD/.run/redis" \
    --appendonly yes --maxmemory-policy noeviction --save ''
fi
start bash -c 'cd sandbox_manager && exec "$0"/uvicorn main:app --host 127.0.0.1 --port 8000' "$BIN"
start bash -c 'cd python-backend && exec "$0"/celery -A app.celery worker --loglevel INFO' "$BIN"
# The design's command, on loopback; python-backend/gunicorn.conf.py adds worker_connections.
start bash -c 'cd python-backend && exec "$0"/gunicorn --worker-class eventlet -w 1 \
  --bind 127.0.0.1:8765 app:app' "$BIN"
# Flower reads FLOWER_BASIC_AUTH from the environment: no password on the command line.
start bash -c 'cd python-backend && exec "$0"/celery -A app.celery flower --address=127.0.0.1 \
  --port=5555' "$BIN"

sleep 3
cat <<TXT

AI-OS is starting (Ctrl-C stops everything):
  web (REST + Socket.IO)  http://127.0.0.1:8765   health: /health
  sandbox manager         http://127.0.0.1:8000   API docs: /docs
  flower                  http://127.0.0.1:5555   login: ${FLOWER_BASIC_AUTH%%:*} (password in .env)
  API token               AIOS_API_TOKEN in .env (${AIOS_API_TOKEN:0:6}...)

TXT
if [ -z "${OPENAI_API_KEY:-}${ANTHROPIC_API_KEY:-}${GROQ_API_KEY:-}${MISTRAL_API_KEY:-}${OPENAI_COMPATIBLE_BASE_URL:-}" ]; then
  echo "No LLM provider is configured: chat tasks will fail until you set OPENAI_API_KEY,"
  echo "ANTHROPIC_API_KEY, GROQ_API_KEY or MISTRAL_API_KEY, or"
  echo "OPENAI_COMPATIBLE_BASE_URL for a local server such as Ollama, LM Studio or llama.cpp's"
  echo "server, in .env. The echo and code task kinds work without one."
  echo
fi
wait -n "${pids[@]}"  # one process ended: stop the rest
