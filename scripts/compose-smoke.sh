#!/usr/bin/env bash
# `make compose-smoke`: `docker-compose up -d --build` on the local Debian base (compose builds
# every image, the sandbox and browser images too, into tags of the smoke's own), under a
# unique project name on free ports; wait until every service is healthy, run a `code` task
# end to end over Socket.IO, open a browser sandbox through the manager, check Flower's auth,
# the `monitoring` profile's Prometheus (every target up, the task counted), Redis's password
# and volume name, /app/tmp, a second `up -d`
# without --build, then take everything down (also on failure or Ctrl-C) and check no
# container, volume or network is left. Then the design guide's Quick Start on a fresh
# clone with only python-backend/.env (scripts/compose-fresh-clone-smoke.sh; SMOKE_FRESH_CLONE=0
# skips it). Prints how long each step took. COMPOSE=<command> runs both under another
# Compose (v2: COMPOSE=$(scripts/install-compose-v2.sh)); by default bookworm's docker-compose.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/smoke-lib.sh
source scripts/smoke-lib.sh

LOCAL_BASE=${LOCAL_BASE:-aios-base:bookworm}
TIMEOUT_S=${SMOKE_TIMEOUT_S:-300}   # for the stack to come up healthy
BUILD_TIMEOUT_S=${SMOKE_BUILD_TIMEOUT_S:-1200}   # for `up --build`'s builds (cold: minutes)
PY=${PY:-.venv/bin/python}          # the host's venv: python-socketio client, websocket-client
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0   # the legacy builder: no buildx, no registry
t0=$SECONDS
step_t=$SECONDS
step() { echo "== $1 ($((SECONDS - step_t)) s)"; step_t=$SECONDS; }

[ -n "${COMPOSE:-}" ] || command -v docker-compose >/dev/null 2>&1 \
  || scripts/ensure-packages.sh docker-compose
echo "compose: ${COMPOSE_CMD[*]}, $("${COMPOSE_CMD[@]}" version --short)"
scripts/make-wheelhouse.sh
# The local base; also the developer's aios-sandbox and aios-browser, whose layers compose's
# builds reuse (the browser's apt layer, Chromium, is the slow one: minutes, once).
LOCAL_BASE=$LOCAL_BASE scripts/build-images.sh
step "wheelhouse, base, sandbox and browser images ready"

project=aios-smoke-$$
work=$(mktemp -d /var/tmp/aios-smoke.XXXXXX)
mkdir -p "$work/tmp" "$work/downloads" "$work/documents"
# Set first: `down -v` removes the volume of this name, which must never be a real stack's.
export AIOS_ENV_FILE=$work/env AIOS_REDIS_VOLUME=${project}_redis_data \
  AIOS_SECRETS_VOLUME=${project}_secrets
compose() { "${COMPOSE_CMD[@]}" -p "$project" -f docker-compose.yml --env-file "$AIOS_ENV_FILE" "$@"; }

leftovers() {
  docker ps -aq --filter "label=com.docker.compose.project=$project"
  docker ps -aq --filter "label=aios.manager=$project"   # sandboxes of this stack's manager
}
networks_left() {
  docker network ls -q --filter "label=com.docker.compose.project=$project"
  docker network ls -q --filter "label=aios.manager=$project"   # egress networks
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

# A fresh env file with generated secrets (REDIS_PASSWORD too), made as .env is (left untouched).
AIOS_ENV_FILE=$work/env scripts/ensure-env.sh >/dev/null

export PYTHON_BASE_IMAGE=$LOCAL_BASE REDIS_BASE_IMAGE=$LOCAL_BASE \
  AIOS_IMAGE_PREFIX=${SMOKE_IMAGE_PREFIX:-aios-smoke} SANDBOX_MANAGER_NAME=$project \
  AIOS_TMP_DIR=$work/tmp AIOS_HOST_DOWNLOADS=$work/downloads AIOS_HOST_DOCUMENTS=$work/documents \
  AIOS_WEB_PORT=$(free_port) AIOS_FLOWER_PORT=$(free_port) AIOS_SANDBOX_MANAGER_PORT=$(free_port) \
  AIOS_HEALTHCHECK_INTERVAL=2s AIOS_HEALTHCHECK_TIMEOUT=20s \
  SANDBOX_IMAGE=${SMOKE_IMAGE_PREFIX:-aios-smoke}-sandbox SANDBOX_BASE_IMAGE=$LOCAL_BASE \
  BROWSER_IMAGE=${SMOKE_IMAGE_PREFIX:-aios-smoke}-browser BROWSER_BASE_IMAGE=$LOCAL_BASE \
  COMPOSE_PROFILES=monitoring AIOS_PROMETHEUS_PORT=$(free_port) PROMETHEUS_BASE_IMAGE=$LOCAL_BASE
# The web's descriptor limit may not exceed the engine's (20000 on this machine).
AIOS_WEB_NOFILE=$(docker run --rm --entrypoint sh "$LOCAL_BASE" -c 'ulimit -Hn')
[ "$AIOS_WEB_NOFILE" = unlimited ] || [ "$AIOS_WEB_NOFILE" -ge 65536 ] && AIOS_WEB_NOFILE=65536
export AIOS_WEB_NOFILE
# The guide's redis backup commands name the volume aios_redis_data: the default, whatever the
# project (this stack uses a name of its own, as `down -v` removes it).
volumes=$(env -u AIOS_REDIS_VOLUME -u AIOS_SECRETS_VOLUME "${COMPOSE_CMD[@]}" -p "$project" \
  -f docker-compose.yml --env-file "$AIOS_ENV_FILE" config | sed -n '/^volumes:/,/^[^ ]/s/^ *name: *//p')
vol=$(grep -x aios_redis_data <<<"$volumes") && grep -qx aios_secrets <<<"$volumes" \
  || { echo "volumes by default: '$volumes', not aios_redis_data and aios_secrets"; exit 1; }

# compose builds the sandbox and browser images itself (the build-only services sandbox-image
# and browser-image): their tags are removed first (the layers stay cached), and
# sandbox-manager must start on what compose made.
for image in "$SANDBOX_IMAGE" "$BROWSER_IMAGE"; do
  docker image rm --no-prune "$image" >/dev/null 2>&1 || true
  ! docker image inspect "$image" >/dev/null 2>&1 || { echo "$image still there"; exit 1; }
done
echo "smoke" > "$work/tmp/smoke-marker"   # listed below through the guide's /app/tmp

# The guide's command; up waits for the one-shots' exit and the healthy dependencies itself;
# web and flower are awaited below.
up_started=1
timeout $((BUILD_TIMEOUT_S + TIMEOUT_S)) "${COMPOSE_CMD[@]}" -p "$project" -f docker-compose.yml \
  --env-file "$AIOS_ENV_FILE" up -d --build >"$work/up.log" 2>&1 \
  || { rc=$?; tail -40 "$work/up.log"
       echo "docker-compose up --build failed (exit $rc; 124: not done in $((BUILD_TIMEOUT_S + TIMEOUT_S)) s)"
       exit "$rc"; }
step "docker-compose up -d --build: every image built on $LOCAL_BASE, the stack started"

wait_healthy compose secrets sandbox-image browser-image
compose ps -a sandbox-image browser-image | tail -2 | tr -s ' ' | sed 's/^/docker-compose ps: /'
# The env file has every secret: the one-shot `secrets` takes them (the env file wins) and
# generates none.
secrets_log=$(compose logs --no-color secrets | grep -o 'generated:.*' | tail -1)
[ "$secrets_log" = "generated: none; kept: none; from the env file: AIOS_API_TOKEN SECRET_KEY SANDBOX_MANAGER_TOKEN FLOWER_BASIC_AUTH REDIS_PASSWORD" ] \
  || { echo "secrets, with every one in the env file: '$secrets_log'"; exit 1; }
echo "secrets: $secrets_log"
step "5 services healthy, secrets, sandbox-image and browser-image exited 0"

# The manager runs on the images compose just built.
built=$(docker image inspect -f '{{.Created}}' "$SANDBOX_IMAGE")
"$PY" - "$AIOS_SANDBOX_MANAGER_PORT" "$SANDBOX_IMAGE" "$BROWSER_IMAGE" <<'PYTHON'
import json, sys, urllib.request
port, image, browser_image = sys.argv[1:4]
health = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10))
assert health["checks"]["image"] == {"ok": True, "name": image}, health
assert health["browser_image"] == {"ok": True, "name": browser_image}, health
assert health["features"]["browsers"] is True, health
PYTHON
pooled=$(docker ps --filter "label=aios.manager=$project" --format '{{.Image}}' | sort -u)
[ -z "$pooled" ] || [ "$pooled" = "$SANDBOX_IMAGE" ] || { echo "sandboxes run on: $pooled"; exit 1; }
echo "sandbox-manager: on $SANDBOX_IMAGE, built by compose at $built (warm sandboxes: ${pooled:-none yet})"
mounts=$(docker inspect -f '{{range .Mounts}}{{.Name}}:{{.Destination}} {{end}}' $(compose ps -q redis))
# Its data volume, and the secrets volume read-only (its password).
[ "$(tr ' ' '\n' <<<"$mounts" | sort | xargs)" = "$AIOS_REDIS_VOLUME:/data $AIOS_SECRETS_VOLUME:/run/aios-secrets" ] \
  || { echo "redis mounts: $mounts"; exit 1; }
# The guide's volume backup, as printed but for the volume's name and the image (any with tar):
# docker run --rm -v aios_redis_data:/data -v $(pwd):/backup ubuntu tar czf /backup/redis-backup.tar.gz /data
docker run --rm -v "$AIOS_REDIS_VOLUME":/data -v "$work":/backup "$LOCAL_BASE" \
  tar czf /backup/redis-backup.tar.gz /data 2>/dev/null   # (tar: "Removing leading /")
# Not `| grep -q`: it exits at the first match, tar then dies of SIGPIPE and pipefail fails it.
backup_list=$(tar tzf "$work/redis-backup.tar.gz")
grep -q '^data/appendonlydir/' <<<"$backup_list" \
  || { echo "the guide's backup holds no AOF:"; echo "$backup_list"; exit 1; }
echo "redis: volume $AIOS_REDIS_VOLUME at /data (by default: $vol); the guide's tar backup holds its AOF"
listing=$(compose exec -T -u aios web ls -la /app/tmp 2>&1) || true
grep -q ' smoke-marker$' <<<"$listing" || { echo "web's /app/tmp:"; echo "$listing"; exit 1; }
echo "web: ls -la /app/tmp lists the shared scratch space ($(wc -l <<<"$listing") lines)"
step "manager on the compose-built sandbox image; redis volume; /app/tmp"

# A browser sandbox through the composed manager, on the browser image compose built:
# Chromium's own sandbox on (the manager image carries docker/seccomp-browser.json), a page
# action answered, and nothing of it left once deleted.
manager_token=$(grep '^SANDBOX_MANAGER_TOKEN=' "$work/env" | cut -d= -f2-)
"$PY" - "$AIOS_SANDBOX_MANAGER_PORT" "$manager_token" "$BROWSER_IMAGE" <<'PYTHON'
import json, subprocess, sys, time, urllib.error, urllib.request
port, token, browser_image = sys.argv[1:4]
base = f"http://127.0.0.1:{port}/v1/browsers"

def call(method, url, body=None, timeout=90):
    request = urllib.request.Request(url, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()[:500]

def docker_ls(*args):
    return subprocess.run(["docker", *args], check=True, capture_output=True,
                          text=True).stdout.split()

started = time.monotonic()
status, browser = call("POST", base, {"owner": "compose-smoke", "ttl_s": 300})
start_s = time.monotonic() - started
assert status == 201, (status, browser)
bid = browser["id"]
try:
    assert browser["kind"] == "browser" and browser["browser"]["chromium_sandbox"] is True, browser
    images = set(docker_ls("ps", "--filter", f"label=aios.id={bid}", "--format", "{{.Image}}"))
    assert browser_image in images, (browser_image, images)
    status, answer = call("POST", f"{base}/{bid}/actions", {"action": "snapshot"})
    assert status == 200 and answer["ok"] is True, (status, answer)
    assert {"url", "title", "snapshot", "tabs"} <= answer["result"].keys(), answer
finally:
    status, _ = call("DELETE", f"{base}/{bid}")
assert status == 204, status
left = (docker_ls("ps", "-aq", "--filter", f"label=aios.id={bid}")
        + docker_ls("network", "ls", "-q", "--filter", f"label=aios.id={bid}"))
assert not left, f"left of browser {bid}: {left}"
assert call("GET", f"{base}/{bid}")[0] == 404
print(f"browser {bid}: 201 in {start_s:.1f} s on {browser_image} (Chromium "
      f"{browser['browser']['version']}, chromium_sandbox true), snapshot of "
      f"{answer['result']['url']!r} ok, DELETE 204, no container or network left")
PYTHON
step "a browser sandbox through the composed manager: created, snapshot, deleted"

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
# What the services use now, a code task done (the worker holds no browser: docs/deployment.md).
# shellcheck disable=SC2046
docker stats --no-stream --format '{{.Name}} {{.MemUsage}}' $(compose ps -q "${SERVICES[@]}") \
  | sed -E "s/^${project}[_-]/memory: /"   # v1 names containers project_web_1, v2 project-web-1
step "code task over Socket.IO and Flower's auth checked"

# The monitoring profile's Prometheus scrapes every /metrics of the stack with the tokens of
# the secrets volume (docker/prometheus.yml), and counts the code task just run.
"$PY" - "$AIOS_PROMETHEUS_PORT" <<'PYTHON'
import json, sys, time, urllib.parse, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}/api/v1"

def get(path):
    with urllib.request.urlopen(base + path, timeout=10) as response:
        return json.load(response)["data"]

deadline, jobs, tasks = time.monotonic() + 120, {}, []
while time.monotonic() < deadline:  # its scrape interval is 15 s
    try:
        jobs = {t["labels"]["job"]: t["health"] for t in get("/targets")["activeTargets"]}
        query = urllib.parse.quote('sum by (kind, status) (aios_tasks_total{kind="code"})')
        tasks = [(r["metric"], r["value"][1]) for r in get(f"/query?query={query}")["result"]]
    except OSError:
        pass
    wanted = {"web", "worker", "sandbox-manager", "flower", "prometheus"}
    if set(jobs) >= wanted and all(jobs[j] == "up" for j in wanted) and tasks:
        break
    time.sleep(2)
assert jobs and all(health == "up" for health in jobs.values()), f"scrape targets: {jobs}"
assert ({"kind": "code", "status": "succeeded"}, "1") in tasks, f"aios_tasks_total: {tasks}"
print(f"prometheus: targets up: {', '.join(sorted(jobs))}; "
      "aios_tasks_total{kind=code, status=succeeded} = 1")
PYTHON
step "the monitoring profile's Prometheus scrapes web, worker, manager and Flower"

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

# `up -d` again, without --build, the images present: nothing is recreated, the one-shot
# sandbox-image runs again and exits 0, everything stays healthy.
ids=$(compose ps -q "${SERVICES[@]}" | sort)
timeout "$TIMEOUT_S" "${COMPOSE_CMD[@]}" -p "$project" -f docker-compose.yml \
  --env-file "$AIOS_ENV_FILE" up -d --no-build >"$work/up2.log" 2>&1 \
  || { rc=$?; tail -40 "$work/up2.log"; echo "second docker-compose up -d failed (exit $rc)"; exit "$rc"; }
wait_healthy compose secrets sandbox-image browser-image
[ "$(compose ps -q "${SERVICES[@]}" | sort)" = "$ids" ] \
  || { echo "a second up -d recreated containers:"; cat "$work/up2.log"; exit 1; }
step "a second up -d (no --build): nothing recreated, all healthy"

teardown
left=$(leftovers)
[ -z "$left" ] || { echo "containers left behind: $left"; exit 1; }
for volume in "$AIOS_REDIS_VOLUME" "$AIOS_SECRETS_VOLUME"; do
  if docker volume inspect "$volume" >/dev/null 2>&1; then
    echo "volume left behind: $volume"; exit 1
  fi
done
left=$(docker volume ls -q --filter "label=com.docker.compose.project=$project")
[ -z "$left" ] || { echo "volumes left behind: $left"; exit 1; }
left=$(networks_left)
[ -z "$left" ] || { echo "networks left behind: $left"; exit 1; }
step "stack down (down -v): no container, volume or network left"

# The design guide's Quick Start on a fresh clone (#19): its own project, images and volumes.
if [ "${SMOKE_FRESH_CLONE:-1}" != 0 ]; then
  LOCAL_BASE=$LOCAL_BASE PY=$PY COMPOSE="${COMPOSE:-}" scripts/compose-fresh-clone-smoke.sh
  step "the guide's Quick Start on a fresh clone (scripts/compose-fresh-clone-smoke.sh)"
fi
