#!/usr/bin/env bash
# `make run`: the whole stack as local processes, in the foreground. A service that dies is
# restarted (in 1, 2, 4 ... 30 s while it keeps dying; 1 s again once it ran 60 s). Ctrl-C or
# SIGTERM stops everything it started: web, flower and worker first (the worker lets running
# tasks finish for AIOS_WORKER_GRACE_S, then hands them back to the queue), then the sandbox
# manager and redis. A second Ctrl-C kills at once.
#
# Settings: the environment, then .env for what it does not set (the environment wins).
# AIOS_ENV_FILE: another env file; AIOS_RUN_DIR: redis's data (default .run); the ports:
# AIOS_WEB_PORT (or the design guide's PORT; 8765), AIOS_SANDBOX_MANAGER_PORT (8000),
# AIOS_FLOWER_PORT (5555), redis REDIS_URL's (6379); REDIS_MAXMEMORY: the maxmemory of the
# redis it starts (none by default); AIOS_BUILD_IMAGES=0: do not (re)build the sandbox image;
# AIOS_WEB_WORKER_CLASS: the web's gunicorn worker, eventlet (default) or gevent.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/.venv/bin
ENV_FILE=${AIOS_ENV_FILE:-.env}
RUN_DIR=${AIOS_RUN_DIR:-.run}
say() { echo "run.sh: $*" >&2; }

AIOS_ENV_FILE=$ENV_FILE scripts/ensure-env.sh

# The env file fills in what the environment does not set. Its values may hold '=', spaces
# and quotes: python-dotenv parses them as the services' settings do; the shell evaluates none.
mapfile -d '' assignments < <("$BIN/python" - "$ENV_FILE" <<'PYTHON'
import os, re, sys
from dotenv import dotenv_values
for name, value in dotenv_values(sys.argv[1]).items():
    if value is not None and name not in os.environ and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        sys.stdout.write(f"{name}={value}\0")
PYTHON
)
wait $! || { say "cannot read $ENV_FILE"; exit 1; }
declare -A from_file=()
for assignment in "${assignments[@]}"; do
  export "$assignment"
  from_file[${assignment%%=*}]=1
done
where() { [ -n "${from_file[$1]:-}" ] && echo "in $ENV_FILE" || echo "from the environment"; }

[ "${AIOS_BUILD_IMAGES:-1}" = 0 ] || scripts/build-images.sh

: "${AIOS_WEB_PORT:=${PORT:-8765}}" "${AIOS_SANDBOX_MANAGER_PORT:=8000}" "${AIOS_FLOWER_PORT:=5555}"
: "${SANDBOX_MANAGER_URL:=http://127.0.0.1:$AIOS_SANDBOX_MANAGER_PORT}"
export SANDBOX_MANAGER_URL AIOS_WEB_PORT AIOS_SANDBOX_MANAGER_PORT AIOS_FLOWER_PORT

# Redis: REDIS_URL's address (default 127.0.0.1:6379). A redis-server already answering
# there is used as it is; else one is started with REDIS_PASSWORD (scripts/ensure-env.sh
# generates it) or the password REDIS_URL carries, and every service's URL carries it.
mapfile -d '' redis < <("$BIN/python" - <<'PYTHON'
import os, sys
from urllib.parse import quote, unquote, urlsplit
url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
parts = urlsplit(url)
userinfo, _, hostinfo = parts.netloc.rpartition("@")
open_url = parts._replace(netloc=hostinfo).geturl()
if userinfo:  # the URL has its credentials
    locked, password, source = url, unquote(parts.password or ""), "REDIS_URL"
elif os.environ.get("REDIS_PASSWORD"):
    password, source = os.environ["REDIS_PASSWORD"], "REDIS_PASSWORD"
    locked = parts._replace(netloc=f":{quote(password, safe='')}@{hostinfo}").geturl()
else:
    locked, password, source = url, "", ""
sys.stdout.write("\0".join([parts.hostname or "127.0.0.1", str(parts.port or 6379), password,
                            locked, open_url, source]) + "\0")
PYTHON
)
wait $! || { say "cannot parse REDIS_URL"; exit 1; }
redis_host=${redis[0]} redis_port=${redis[1]} redis_password=${redis[2]}
ping_redis() {  # [password]: PONG, NOAUTH..., or nothing when no server answers
  if [ -n "${1:-}" ]; then export REDISCLI_AUTH=$1; fi  # not on redis-cli's command line
  redis-cli -h "$redis_host" -p "$redis_port" ping 2>/dev/null || true
  unset REDISCLI_AUTH
}
case ${redis[5]} in
  REDIS_PASSWORD) redis_note="(password: REDIS_PASSWORD $(where REDIS_PASSWORD))" ;;
  REDIS_URL) redis_note="(password: in REDIS_URL)" ;;
  *) redis_note="(no password: set REDIS_PASSWORD)" ;;
esac
start_redis=""
answer=$(ping_redis)
if [ "$answer" = PONG ]; then
  REDIS_URL=${redis[4]}
  redis_note="(already running, without a password)"
  say "the redis-server at $redis_host:$redis_port has no password: using it as it is (stop it" \
      "and make run starts one that asks for REDIS_PASSWORD)"
elif [ -n "$answer" ]; then
  REDIS_URL=${redis[3]}
  redis_note="(already running)"
  if [ "$(ping_redis "$redis_password")" != PONG ]; then
    say "the redis-server at $redis_host:$redis_port refuses REDIS_PASSWORD (or REDIS_URL's" \
        "password): stop it, or set REDIS_URL to its address and password"
    exit 1
  fi
else
  REDIS_URL=${redis[3]}
  case $redis_host in
    127.0.0.1|localhost) start_redis=1 ;;
    *) say "no redis-server answers at $redis_host:$redis_port (REDIS_URL); the services will retry" ;;
  esac
fi
export REDIS_URL
if [ -n "$start_redis" ]; then
  mkdir -p "$RUN_DIR/redis"
  redis_dir=$(cd "$RUN_DIR/redis" && pwd)
  # The password reaches redis-server on its standard input: never on a command line.
  escaped=${redis_password//\\/\\\\}
  redis_conf=${redis_password:+requirepass \"${escaped//\"/\\\"}\"}
fi

# A bad configuration stops here, with the services' own messages, not in a restart loop.
# The web's worker class (AIOS_WEB_WORKER_CLASS: eventlet or gevent) as the settings read it,
# .env files included: supervise.py gives it to gunicorn, whose gunicorn.conf.py checks it.
AIOS_WEB_WORKER_CLASS=$(cd python-backend && "$BIN/python" -c \
  'from aios.settings import load_settings; print(load_settings().web_worker_class)')
export AIOS_WEB_WORKER_CLASS
(cd python-backend && "$BIN/python" flowerconfig.py)

if [ -z "$start_redis" ] && [ -n "${REDIS_MAXMEMORY:-}" ]; then
  say "REDIS_MAXMEMORY ($(where REDIS_MAXMEMORY)) sizes a redis-server make run starts; the" \
      "one at $redis_host:$redis_port runs already: set its maxmemory there (redis-cli" \
      "CONFIG SET maxmemory $REDIS_MAXMEMORY), or unset REDIS_MAXMEMORY"
fi

services=(sandbox-manager worker web flower)
[ -z "$start_redis" ] || services=(redis "${services[@]}")
column() { printf '  %-23s %-30s %s\n' "$@"; }
banner=$(
  echo
  echo "AI-OS is starting (Ctrl-C stops everything):"
  column "web (REST + Socket.IO)" "http://127.0.0.1:$AIOS_WEB_PORT" "health: /health"
  column "sandbox manager" "http://127.0.0.1:$AIOS_SANDBOX_MANAGER_PORT" "API docs: /docs"
  column "flower" "http://127.0.0.1:$AIOS_FLOWER_PORT" \
    "login: ${FLOWER_BASIC_AUTH%%:*} (password $(where FLOWER_BASIC_AUTH))"
  column "redis" "$redis_host:$redis_port" "$redis_note"
  column "API token" "AIOS_API_TOKEN $(where AIOS_API_TOKEN)" "(${AIOS_API_TOKEN:0:6}...)"
  echo
  if [ "$(id -u)" = 0 ]; then
    echo "As root, the worker runs as root: it reads the uploads the web writes and the folders"
    echo "of AIOS_FILE_ROOTS as root. For services that do not run as root, use compose (user aios)."
    echo
  fi
  if [ -z "${OPENAI_API_KEY:-}${ANTHROPIC_API_KEY:-}${GROQ_API_KEY:-}${MISTRAL_API_KEY:-}${OPENAI_COMPATIBLE_BASE_URL:-}" ]; then
    echo "No LLM provider is configured: chat tasks will fail until you set OPENAI_API_KEY,"
    echo "ANTHROPIC_API_KEY, GROQ_API_KEY or MISTRAL_API_KEY, or"
    echo "OPENAI_COMPATIBLE_BASE_URL for a local server such as Ollama, LM Studio or llama.cpp's"
    echo "server, in $ENV_FILE. The echo and code task kinds work without one."
    echo
  fi
)

# The supervisor takes over this process (Ctrl-C and SIGTERM reach it): it starts each service
# in a session of its own (its pid is its process group's), restarts one that ends, and stops
# them all. It takes redis's requirepass line out of its environment before it starts
# anything, and gives it to redis-server on its standard input.
export RUN_REDIS_CONF=${redis_conf:-} RUN_REDIS_DIR=${redis_dir:-} RUN_REDIS_PORT=$redis_port
exec "$BIN/python" scripts/supervise.py "$banner" "${services[@]}"
