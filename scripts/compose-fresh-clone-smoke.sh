#!/usr/bin/env bash
# The design guide's Quick Start on a fresh clone, without preparation (issue #19): a copy of
# the working tree (HEAD's files plus uncommitted changes: `git ls-files`, no .venv, no tmp/),
# whose only configuration is the guide's python-backend/.env (provider keys, REDIS_URL=
# redis://redis:6379/0, SECRET_KEY=your-secret-key-here, DEBUG=false, LOG_LEVEL=INFO), and
# the guide's `docker-compose up --build -d` (so docker-compose.override.yml too). Checks:
# the one-shot `secrets` generated every missing secret into its volume; all five services
# healthy; `docker-compose logs web` says how to read the token and no log holds a secret;
# the token read that way runs a `code` task over Socket.IO, and a `chat` reaches a fake
# OpenAI with the env file's key (OPENAI_BASE_URL, the one line added to the guide's file);
# `down` (no -v) and `up -d` keep the secrets; `down -v --rmi all` leaves no container,
# network, volume or image of it.
#
# What this machine needs besides (not configuration): the wheelhouse copied in (containers
# here cannot reach PyPI), the local Debian base passed as README.md documents
# (PYTHON_BASE_IMAGE=... in the shell), and, so that it runs beside other stacks, its own
# project name, image names, volume names, free ports and host folders, all from the shell.
# Called by scripts/compose-smoke.sh after its own checks (it made the wheelhouse and base).
# COMPOSE=<command>: the Compose to run it with (v2: the path scripts/install-compose-v2.sh
# prints); bookworm's docker-compose 1.29 by default.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/smoke-lib.sh
source scripts/smoke-lib.sh

LOCAL_BASE=${LOCAL_BASE:-aios-base:bookworm}
TIMEOUT_S=${SMOKE_TIMEOUT_S:-300}
BUILD_TIMEOUT_S=${SMOKE_BUILD_TIMEOUT_S:-1200}
PY=${PY:-$PWD/.venv/bin/python}
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
t0=$SECONDS
step_t=$SECONDS
step() { echo "== fresh clone: $1 ($((SECONDS - step_t)) s)"; step_t=$SECONDS; }

project=aios-fresh-$$
prefix=${SMOKE_FRESH_IMAGE_PREFIX:-aios-smoke-fresh}
work=$(mktemp -d /var/tmp/aios-fresh.XXXXXX)
clone=$work/ai-os
mkdir -p "$clone" "$work/downloads" "$work/documents"

web_port=$(free_port)
nofile=$(docker run --rm --entrypoint sh "$LOCAL_BASE" -c 'ulimit -Hn')
[ "$nofile" = unlimited ] || [ "$nofile" -ge 65536 ] && nofile=65536
# Only the machine's: nothing of the secrets or the env file (AIOS_ENV_FILE and
# REDIS_PASSWORD of a caller are dropped).
DC_ENV=(COMPOSE_PROJECT_NAME="$project"
  PYTHON_BASE_IMAGE="$LOCAL_BASE" REDIS_BASE_IMAGE="$LOCAL_BASE"
  SANDBOX_BASE_IMAGE="$LOCAL_BASE" BROWSER_BASE_IMAGE="$LOCAL_BASE"
  AIOS_IMAGE_PREFIX="$prefix" SANDBOX_IMAGE="$prefix-sandbox" BROWSER_IMAGE="$prefix-browser"
  AIOS_SECRETS_VOLUME="${project}_secrets" AIOS_REDIS_VOLUME="${project}_redis_data"
  SANDBOX_MANAGER_NAME="$project" AIOS_HEALTHCHECK_INTERVAL=2s AIOS_HEALTHCHECK_TIMEOUT=20s
  AIOS_WEB_NOFILE="$nofile"
  AIOS_WEB_PORT="$web_port" AIOS_FLOWER_PORT="$(free_port)" AIOS_SANDBOX_MANAGER_PORT="$(free_port)"
  AIOS_HOST_DOWNLOADS="$work/downloads" AIOS_HOST_DOCUMENTS="$work/documents")
dc() {
  (cd "$clone" && timeout "${DC_TIMEOUT:-$TIMEOUT_S}" env -u AIOS_ENV_FILE -u REDIS_PASSWORD \
     -u AIOS_REDIS_VOLUME "${DC_ENV[@]}" "${COMPOSE_CMD[@]}" "$@")
}
images() { docker images -q --filter "reference=$prefix-*"; }

up_started="" down_done=""
teardown() {
  [ -n "$down_done" ] && return 0
  down_done=1
  if [ -n "$up_started" ]; then
    dc down -v --rmi all --remove-orphans --timeout 30 >/dev/null 2>&1 || true
    docker ps -aq --filter "label=com.docker.compose.project=$project" | xargs -r docker rm -f >/dev/null 2>&1 || true
    docker ps -aq --filter "label=aios.manager=$project" | xargs -r docker rm -f >/dev/null 2>&1 || true
  fi
  rm -rf "$work" 2>/dev/null || { docker run --rm -v "$work:/w" "$LOCAL_BASE" rm -rf /w/ai-os
                                  rm -rf "$work"; } || true
}
on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ -n "$up_started" ] && [ -z "$down_done" ]; then
    echo "fresh-clone smoke FAILED: the stack as it was:" >&2
    dc ps >&2 || true
    dc logs --no-color --tail=40 >&2 || true
  fi
  teardown
  echo "fresh-clone smoke: $([ "$rc" -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - t0)) s"
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM
# The working tree as a fresh clone would have it, with the uncommitted changes (no index
# touched): tracked and new unignored files; deleted ones are skipped.
git ls-files -z --cached --others --exclude-standard \
  | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$clone"
[ -z "$(ls -A "$clone/tmp" 2>/dev/null | grep -v '^.gitkeep$')" ] || { echo "tmp/ copied"; exit 1; }
[ ! -e "$clone/.env" ] || { echo "a root .env reached the clone"; exit 1; }
rm -rf "$clone/wheelhouse"   # (its README and .gitignore come back with the rest)
cp -al wheelhouse "$clone/wheelhouse" 2>/dev/null || cp -a wheelhouse "$clone/wheelhouse"
# The guide's "Required Environment Variables", as printed but for the key's value.
cat > "$clone/python-backend/.env" <<'ENV'
# AI API Keys
OPENAI_API_KEY=sk-fake-openai-key-for-the-smoke
GROQ_API_KEY=your-groq-key-here
ANTHROPIC_API_KEY=your-anthropic-key-here
MISTRAL_API_KEY=your-mistral-key-here

# Redis Configuration
REDIS_URL=redis://redis:6379/0

# Celery Configuration
CELERY_BROKER_URL=redis://redis:6379/0
CELERY_RESULT_BACKEND=redis://redis:6379/0

# Sandbox Manager
SANDBOX_MANAGER_URL=http://sandbox-manager:8000

# Security
SECRET_KEY=your-secret-key-here

# Debug Settings
DEBUG=false
LOG_LEVEL=INFO
ENV
# Not the guide's: its OpenAI key goes to the fake OpenAI server this script runs on the
# Docker bridge's gateway (tests/fakes/llm_server.py), which the containers reach.
gateway=$(docker network inspect bridge -f '{{(index .IPAM.Config 0).Gateway}}')
llm_port=$(python3 -c 'import socket, sys; s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$gateway")
echo "OPENAI_BASE_URL=http://$gateway:$llm_port/v1" >> "$clone/python-backend/.env"

step "a copy of the working tree with only the guide's python-backend/.env; compose $(dc version --short)"

# The guide's command, as printed.
up_started=1
DC_TIMEOUT=$((BUILD_TIMEOUT_S + TIMEOUT_S)) dc up --build -d >"$work/up.log" 2>&1 \
  || { rc=$?; tail -40 "$work/up.log"; echo "docker-compose up --build -d failed (exit $rc)"; exit "$rc"; }
step "docker-compose up --build -d"

wait_healthy dc secrets
made=$(dc logs --no-color secrets | grep -o 'generated:[^;]*' | tail -1)
[ "$made" = "generated: AIOS_API_TOKEN SECRET_KEY SANDBOX_MANAGER_TOKEN FLOWER_BASIC_AUTH REDIS_PASSWORD" ] \
  || { echo "secrets on first start: '$made'"; dc logs --no-color secrets; exit 1; }
echo "secrets: $made (SECRET_KEY: the guide's placeholder is no secret)"
step "5 services healthy; every secret generated"

# How to read the token: `docker-compose logs web` says it (one line); run what it says
# (with -T: no terminal here).
hint=$(dc logs --no-color web | grep -o 'read it with: docker-compose exec web cat [^ ]*' | tail -1)
[ -n "$hint" ] || { echo "no token hint in docker-compose logs web:"; dc logs --no-color web | tail -20; exit 1; }
read_token=${hint#read it with: docker-compose exec web }
token=$(dc exec -T web $read_token)
[ "${#token}" -ge 32 ] || { echo "the token read as the logs say is ${#token} characters"; exit 1; }
echo "web's log: '$hint'; the token read that way: ${#token} characters"
# No secret in any service's log.
logs=$(dc logs --no-color)
for name in AIOS_API_TOKEN SECRET_KEY SANDBOX_MANAGER_TOKEN FLOWER_BASIC_AUTH REDIS_PASSWORD; do
  value=$(dc exec -T web cat "/run/aios-secrets/$name")
  [ -n "$value" ] || { echo "$name: empty in the volume"; exit 1; }
  ! grep -qF -- "${value#admin:}" <<<"$logs" || { echo "$name's value is in the logs"; exit 1; }
done
echo "logs: none of the 5 secrets in $(wc -l <<<"$logs") lines"
# The README's replacement for the guide's `redis-cli ping`: the password from the volume.
pong=$(dc exec -T redis redis-cli ping 2>&1)
[ "$pong" = PONG ] || { echo "docker-compose exec redis redis-cli ping: $pong"; exit 1; }
echo "docker-compose exec redis redis-cli ping: $pong"

"$PY" - "$web_port" "$token" "$gateway" "$llm_port" <<'PYTHON'
import json, sys, threading, urllib.request
import socketio
import uvicorn

sys.path.insert(0, ".")
from tests.fakes.llm_server import FakeLLM

port, token, gateway, llm_port = sys.argv[1:5]
health = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10))
assert health["status"] == "ok", health
events, done = [], threading.Event()
sio = socketio.Client()

@sio.on("task:event")
def on_event(event):
    events.append(event)
    if event["type"] == "status" and event["data"]["status"] in ("succeeded", "failed", "cancelled"):
        done.set()

sio.connect(f"http://127.0.0.1:{port}", auth={"token": token}, transports=["websocket"],
            wait_timeout=10)
ack = sio.call("task:submit", {"kind": "code", "input": {"language": "python",
                                                          "code": "print(6 * 7)"}}, timeout=10)
assert "task_id" in ack, f"submit refused: {ack}"
assert done.wait(60), f"no final status within 60 s; events: {events}"
sio.disconnect()
stdout = "".join(e["data"]["text"] for e in events if e["type"] == "stdout")
assert events[-1]["data"]["status"] == "succeeded" and stdout == "42\n", events
print(f"code task {ack['task_id']}: {len(events)} events, stdout {stdout!r}")

# A chat through the composed stack to the fake OpenAI, with the guide's OPENAI_API_KEY.
fake = FakeLLM()
fake.server = uvicorn.Server(uvicorn.Config(fake.app, host=gateway, port=int(llm_port),
                                            log_level="warning"))
fake.start()
events.clear()
done.clear()
sio = socketio.Client()
sio.on("task:event", on_event)
sio.connect(f"http://127.0.0.1:{port}", auth={"token": token}, transports=["websocket"],
            wait_timeout=10)
ack = sio.call("task:submit", {"kind": "chat", "input": {
    "provider": "openai", "messages": [{"role": "user", "content": "Say hello"}]}}, timeout=10)
assert "task_id" in ack, f"submit refused: {ack}"
assert done.wait(60), f"no final status within 60 s; events: {events}"
sio.disconnect()
fake.stop()
text = "".join(e["data"]["text"] for e in events if e["type"] == "token")
assert events[-1]["data"]["status"] == "succeeded" and text == "Hello world", events
assert [r["authorization"] for r in fake.requests] == ["Bearer sk-fake-openai-key-for-the-smoke"]
print(f"chat task {ack['task_id']}: {text!r} from the fake OpenAI at {gateway}:{llm_port}, "
      f"with the key of python-backend/.env")
PYTHON
step "token read as web's log says; no secret in the logs; a code task and a chat"

# `down` without -v keeps the volume: the same secrets after `up -d`.
dc down --timeout 30 >"$work/down.log" 2>&1
dc up -d >"$work/up2.log" 2>&1 || { tail -40 "$work/up2.log"; echo "up -d after down failed"; exit 1; }
wait_healthy dc secrets
kept=$(dc logs --no-color secrets | grep -o 'kept:[^;]*' | tail -1)
[ "$(dc exec -T web $read_token)" = "$token" ] || { echo "the token changed across down/up"; exit 1; }
[ "$kept" = "kept: AIOS_API_TOKEN SECRET_KEY SANDBOX_MANAGER_TOKEN FLOWER_BASIC_AUTH REDIS_PASSWORD" ] \
  || { echo "secrets after down/up: '$kept'"; exit 1; }
echo "secrets after down (no -v) and up -d: $kept; all healthy"
step "down and up -d keep the secrets"

teardown
left=$(docker ps -aq --filter "label=com.docker.compose.project=$project"
       docker ps -aq --filter "label=aios.manager=$project"
       docker network ls -q --filter "label=com.docker.compose.project=$project"
       docker volume ls -q --filter "name=$project"
       images)
[ -z "$left" ] || { echo "left behind: $left"; exit 1; }
step "down -v --rmi all: no container, network, volume or image of it left"
