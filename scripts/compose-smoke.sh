#!/usr/bin/env bash
# `make compose-smoke`: build every image on the local Debian base, bring docker-compose.yml up
# under a unique project name on free ports, wait until every service is healthy, run a `code`
# task end to end over Socket.IO, check Flower's auth and Redis's password, then take
# everything down (also on failure or Ctrl-C) and check nothing is left. Prints how long each
# step took.
set -euo pipefail
cd "$(dirname "$0")/.."

LOCAL_BASE=${LOCAL_BASE:-aios-base:bookworm}
TIMEOUT_S=${SMOKE_TIMEOUT_S:-300}   # for the stack to come up healthy
PY=${PY:-.venv/bin/python}          # the host's venv: python-socketio client, websocket-client
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0   # the legacy builder: no buildx, no registry
t0=$SECONDS
step_t=$SECONDS
step() { echo "== $1 ($((SECONDS - step_t)) s)"; step_t=$SECONDS; }

command -v docker-compose >/dev/null 2>&1 || scripts/ensure-packages.sh docker-compose
scripts/make-wheelhouse.sh
LOCAL_BASE=$LOCAL_BASE scripts/build-images.sh   # the local base and the sandbox image
step "wheelhouse, base and sandbox images ready"

project=aios-smoke-$$
work=$(mktemp -d /var/tmp/aios-smoke.XXXXXX)
mkdir -p "$work/tmp" "$work/downloads" "$work/documents"
# Set first: `down -v` removes the volume of this name, which must never be a real stack's.
export AIOS_ENV_FILE=$work/env AIOS_REDIS_VOLUME=${project}_redis-data
compose() { docker-compose -p "$project" -f docker-compose.yml --env-file "$AIOS_ENV_FILE" "$@"; }

leftovers() {
  docker ps -aq --filter "label=com.docker.compose.project=$project"
  docker ps -aq --filter "label=aios.manager=$project"   # sandboxes of this stack's manager
}
up_started="" down_done=""
teardown() {
  [ -n "$down_done" ] && return 0
  down_done=1
  if [ -n "$up_started" ]; then
    compose down -v --remove-orphans --timeout 30 >/dev/null 2>&1 || true
    leftovers | xargs -r docker rm -f >/dev/null 2>&1 || true
  fi
  # Files the containers' user wrote: removable by root, or through a container.
  rm -rf "$work" 2>/dev/null || { docker run --rm -v "$work:/w" "$LOCAL_BASE" rm -rf /w/tmp
                                  rm -rf "$work"; } || true
}
on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ -n "$up_started" ] && [ -z "$down_done" ]; then
    echo "compose-smoke FAILED: the stack as it was:" >&2
    compose ps >&2 || true
    compose logs --no-color --tail=60 >&2 || true
  fi
  teardown
  echo "compose-smoke: $([ "$rc" -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - t0)) s"
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# A fresh env file with generated secrets (REDIS_PASSWORD too), made as .env is (left untouched).
AIOS_ENV_FILE=$work/env scripts/ensure-env.sh >/dev/null

export PYTHON_BASE_IMAGE=$LOCAL_BASE REDIS_BASE_IMAGE=$LOCAL_BASE \
  AIOS_IMAGE_PREFIX=${SMOKE_IMAGE_PREFIX:-aios-smoke} SANDBOX_MANAGER_NAME=$project \
  AIOS_TMP_DIR=$work/tmp AIOS_HOST_DOWNLOADS=$work/downloads AIOS_HOST_DOCUMENTS=$work/documents \
  AIOS_WEB_PORT=$(free_port) AIOS_FLOWER_PORT=$(free_port) AIOS_SANDBOX_MANAGER_PORT=$(free_port) \
  AIOS_HEALTHCHECK_INTERVAL=2s
# The web's descriptor limit may not exceed the engine's (20000 on this machine).
AIOS_WEB_NOFILE=$(docker run --rm --entrypoint sh "$LOCAL_BASE" -c 'ulimit -Hn')
[ "$AIOS_WEB_NOFILE" = unlimited ] || [ "$AIOS_WEB_NOFILE" -ge 65536 ] && AIOS_WEB_NOFILE=65536
export AIOS_WEB_NOFILE
compose build -q redis sandbox-manager web   # worker and flower run web's image
step "service images built on $LOCAL_BASE"

# up waits for the healthy dependencies itself; web and flower are awaited below.
up_started=1
timeout "$TIMEOUT_S" docker-compose -p "$project" -f docker-compose.yml --env-file "$AIOS_ENV_FILE" \
  up -d --no-build || { rc=$?; echo "docker-compose up failed (exit $rc; 124: not done within $TIMEOUT_S s)"; exit "$rc"; }
deadline=$((SECONDS + TIMEOUT_S))
while :; do
  # shellcheck disable=SC2046
  states=$(docker inspect -f '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' \
    $(compose ps -q))
  [ "$(grep -c ' healthy$' <<<"$states")" -eq 5 ] && break
  if [ "$SECONDS" -ge "$deadline" ] || grep -q -E ' (unhealthy|exited|dead)$' <<<"$states"; then
    echo "the stack is not healthy:"; echo "$states"; exit 1
  fi
  sleep 1
done
step "5 services healthy"

token=$(grep '^AIOS_API_TOKEN=' "$work/env" | cut -d= -f2-)
flower_auth=$(grep '^FLOWER_BASIC_AUTH=' "$work/env" | cut -d= -f2-)
"$PY" - "$AIOS_WEB_PORT" "$token" "$AIOS_FLOWER_PORT" "$flower_auth" <<'PYTHON'
import base64, sys, threading, urllib.error, urllib.request
import socketio

web_port, token, flower_port, flower_auth = sys.argv[1:5]

# A `code` task through the composed web server, worker and sandbox manager.
events, done = [], threading.Event()
sio = socketio.Client()

@sio.on("task:event")
def on_event(event):
    events.append(event)
    if event["type"] == "status" and event["data"]["status"] in ("succeeded", "failed", "cancelled"):
        done.set()

sio.connect(f"http://127.0.0.1:{web_port}", auth={"token": token}, transports=["websocket"],
            wait_timeout=10)
code = "import sys\nprint(6 * 7)\nprint('to stderr', file=sys.stderr)\n"
ack = sio.call("task:submit", {"kind": "code", "input": {"language": "python", "code": code}},
               timeout=10)
assert "task_id" in ack, f"submit refused: {ack}"
assert done.wait(60), f"no final status within 60 s; events: {events}"
sio.disconnect()
stdout = "".join(e["data"]["text"] for e in events if e["type"] == "stdout")
result = next(e["data"] for e in events if e["type"] == "result")
assert events[-1]["data"]["status"] == "succeeded", events
assert stdout == "42\n" and result["stdout"] == "42\n", (stdout, result)
assert result["exit_code"] == 0 and result["stderr"] == "to stderr\n", result
print(f"code task {ack['task_id']}: {len(events)} events, stdout {stdout!r}, "
      f"exit_code {result['exit_code']}, {result['duration_ms']} ms in the sandbox")

# Flower: its pages ask for FLOWER_BASIC_AUTH.
def status(headers):
    request = urllib.request.Request(f"http://127.0.0.1:{flower_port}/", headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code

basic = "Basic " + base64.b64encode(flower_auth.encode()).decode()
without, with_auth = status({}), status({"Authorization": basic})
empty_pair = status({"Authorization": "Basic Og=="})  # ":": an empty user and password
assert (without, with_auth, empty_pair) == (401, 200, 401), (without, with_auth, empty_pair)
print(f"flower: {without} without auth, {empty_pair} to an empty pair, {with_auth} with "
      "FLOWER_BASIC_AUTH")
PYTHON
step "code task over Socket.IO and Flower's auth checked"

# Redis asks every client for REDIS_PASSWORD: one on the compose network without it is refused.
noauth=$(compose exec -T -u aios worker python -c '
import socket
with socket.create_connection(("redis", 6379), timeout=5) as conn:
    conn.sendall(b"PING\r\n")
    print(conn.recv(200).decode().strip())' 2>&1) || true
[[ $noauth == -NOAUTH* ]] || { echo "redis without its password answered: $noauth"; exit 1; }
echo "redis, PING without REDIS_PASSWORD: $noauth"
# Flower, started as compose starts it, refuses a blank FLOWER_BASIC_AUTH (flowerconfig.py).
refusal=$(compose run --rm --no-deps -T -e FLOWER_BASIC_AUTH= flower 2>&1) && rc=0 || rc=$?
if [ "$rc" -ne 2 ] || ! grep -q "refusing to start: FLOWER_BASIC_AUTH is empty" <<<"$refusal" \
   || grep -q Traceback <<<"$refusal"; then
  echo "flower with a blank FLOWER_BASIC_AUTH: exit $rc"; echo "$refusal" | tail -20; exit 1
fi
echo "flower, blank FLOWER_BASIC_AUTH: exit $rc, $(grep -o 'refusing to start: FLOWER_BASIC_AUTH is empty' <<<"$refusal")"
step "redis refuses a client without REDIS_PASSWORD (NOAUTH); flower refuses a blank FLOWER_BASIC_AUTH"

# The image runs the design's gunicorn command: gunicorn.conf.py in its WORKDIR must add the rest.
resolved=$(compose exec -T -u aios web gunicorn --print-config app:app 2>&1) || true
grep -qE '^worker_connections += 20000$' <<<"$resolved" \
  || { echo "web's gunicorn did not read gunicorn.conf.py:"; echo "$resolved" | tail -40; exit 1; }
step "web's gunicorn holds 20000 connections (gunicorn.conf.py read)"

teardown
left=$(leftovers)
[ -z "$left" ] || { echo "containers left behind: $left"; exit 1; }
if docker volume inspect "$AIOS_REDIS_VOLUME" >/dev/null 2>&1; then
  echo "volume left behind: $AIOS_REDIS_VOLUME"; exit 1
fi
step "stack down, no container or volume left"
