"""The task pipeline end to end: REST and Socket.IO on gunicorn+eventlet and on gunicorn+gevent
(every test runs under each worker class), real Celery workers, real redis-server, the real
sandbox manager on dockerd."""

import asyncio
import base64
import collections
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
import socketio
import websockets

from ..files import pdf, png
from .stack import (TaskListener, raw_socketio, rest_client, wait_for_task, wait_until,
                    websocket_url)

COUNTING = "import time\nfor i in range({n}):\n    print(i, flush=True)\n    time.sleep({pause})"


@pytest.fixture(scope="module", params=["eventlet", "gevent"])
def web_worker_class(request) -> str:
    """AIOS_WEB_WORKER_CLASS of every web this module starts: pytest runs the module's tests
    under one class, then the other, so one web server of each is up at a time."""
    return request.param


@pytest.fixture(scope="module")
def web(web, web_worker_class, stack_env):
    """The session's eventlet web, or one gevent web for this module's gevent run."""
    if web_worker_class == "eventlet":
        yield web
        return
    from .stack import start_web
    service = start_web(dict(stack_env, AIOS_WEB_WORKER_CLASS=web_worker_class), "web-gevent")
    yield service
    service.stop()


@pytest.fixture
def own_stack(own_stack, web_worker_class):
    own_stack.environment["AIOS_WEB_WORKER_CLASS"] = web_worker_class
    return own_stack


def submit(rest, kind, task_input, **extra) -> str:
    response = rest.post("/api/tasks", json={"kind": kind, "input": task_input, **extra})
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    return response.json()["task_id"]


def wait_for_output(rest, task_id: str, text: str) -> None:
    """Until the task has printed `text`: it is then surely mid-run."""
    def printed():
        events = rest.get(f"/api/tasks/{task_id}/events").json()["events"]
        return stdout_of(events).startswith(text)
    wait_until(printed, 20, f"task {task_id} to print {text!r}")


def stdout_of(events) -> str:
    return "".join(e["data"]["text"] for e in events if e["type"] == "stdout")


def test_health_reports_each_dependency(web):
    body = httpx.get(web.url + "/health").json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"redis", "workers", "sandbox_manager"}
    assert body["checks"]["workers"]["workers"]


def test_code_task_over_rest(rest):
    task_id = submit(rest, "code", {"language": "python", "code": "print(6 * 7)"})
    task = wait_for_task(rest, task_id)
    assert task["status"] == "succeeded" and task["kind"] == "code"
    assert task["result"]["stdout"] == "42\n" and task["result"]["exit_code"] == 0
    events = rest.get(f"/api/tasks/{task_id}/events").json()["events"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["data"]["status"] for e in events if e["type"] == "status"] == \
        ["queued", "running", "succeeded"]
    assert stdout_of(events) == "42\n"
    later = rest.get(f"/api/tasks/{task_id}/events", params={"after": 2}).json()["events"]
    assert later == events[2:]
    assert task_id in [t["task_id"] for t in rest.get("/api/tasks").json()["tasks"]]
    listed = rest.get("/api/tasks", params={"status": "succeeded", "limit": 5}).json()["tasks"]
    assert listed and all(t["status"] == "succeeded" for t in listed)


def test_code_task_passes_binary_files_network_and_outputs_through(rest):
    task_id = submit(rest, "code", {
        "language": "python", "network": "none", "timeout_s": 60,
        "files": {"in.bin": {"data_base64": base64.b64encode(b"\x00\xffdata").decode()}},
        "code": "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()\n"
                "print(open('in.bin', 'rb').read())"})
    task = wait_for_task(rest, task_id, timeout=60)
    assert task["status"] == "succeeded", task
    assert task["result"]["stdout"] == "b'\\x00\\xffdata'\n"
    assert "outputs" not in task["result"], "artifacts, not bytes, in the task's record"
    [figure] = task["result"]["artifacts"]
    assert figure == {"name": "figure-1.png", "mime": "image/png", "size": figure["size"],
                      "url": f"/api/tasks/{task_id}/artifacts/figure-1.png"}
    events = rest.get(f"/api/tasks/{task_id}/events").json()["events"]
    assert [e["data"] for e in events if e["type"] == "artifact"] == [figure]
    png = rest.get(figure["url"])
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png.content) == figure["size"]
    assert png.headers["content-type"] == "image/png"
    assert png.headers["content-disposition"] == "attachment; filename=figure-1.png"
    assert rest.get(f"/api/tasks/{task_id}/artifacts").json()["artifacts"] == [figure]
    for bad in ("..%2F..%2Fetc%2Fpasswd", "../x", ".index.json", "figure-2.png"):
        missing = rest.get(f"/api/tasks/{task_id}/artifacts/{bad}")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert rest.get("/api/tasks/nosuchtask00/artifacts/figure-1.png").status_code == 404
    with httpx.Client(base_url=str(rest.base_url)) as anonymous:
        assert anonymous.get(figure["url"]).status_code == 401
    refused = rest.post("/api/tasks", json={"kind": "code", "input": {
        "language": "python", "code": "1", "network": "everywhere"}})
    assert refused.status_code == 422 and "network" in refused.json()["error"]["message"]
    egress = wait_for_task(rest, submit(rest, "code", {"language": "python", "code": "1",
                                                       "network": "egress"}))
    assert egress["status"] == "failed" and egress["error"]["code"] == "egress_disabled"


def test_echo_task_over_socketio(listener):
    ack = listener.call("task:submit", {"kind": "echo", "input": {"text": "hi"}})
    assert ack["status"] == "queued"
    assert listener.wait_final(ack["task_id"]) == "succeeded"
    events = listener.of(ack["task_id"])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert {"type": "result", "data": {"text": "hi"}}.items() <= \
        [e for e in events if e["type"] == "result"][0].items()


def test_code_output_streams_while_it_runs(listener):
    ack = listener.call("task:submit", {"kind": "code", "input": {
        "language": "python", "code": COUNTING.format(n=3, pause=0.7)}})
    listener.wait_for(lambda got: stdout_of(got.of(ack["task_id"])) == "0\n", 10,
                      "the first line")
    assert not any(e["type"] == "result" for e in listener.of(ack["task_id"]))
    assert listener.wait_final(ack["task_id"]) == "succeeded"
    assert stdout_of(listener.of(ack["task_id"])) == "0\n1\n2\n"


@pytest.mark.parametrize("method, path", [
    ("POST", "/api/tasks"), ("GET", "/api/tasks"), ("GET", "/api/tasks/x"),
    ("GET", "/api/tasks/x/events"), ("POST", "/api/tasks/x/cancel"), ("GET", "/api/providers")])
@pytest.mark.parametrize("token", ["", "wrong-token-0123456789"])
def test_rest_needs_the_token(web, method, path, token):
    with rest_client(web, token=token) as client:
        response = client.request(method, path, json={})
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789"])
def test_socketio_refuses_a_bad_token(web, token):
    client = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(web.url, auth={"token": token} if token else None,
                       transports=["websocket"], wait_timeout=5)


@pytest.mark.parametrize("body, status, code", [
    ('{"kind": "code", "input": ', 400, "malformed_json"),
    ('["code"]', 422, "invalid_request"),
    ('{"kind": "cobol", "input": {}}', 422, "invalid_request"),
    ('{"kind": "chat", "input": {"messages": []}}', 422, "invalid_request"),
    ('{"kind": "code", "input": {"language": "python"}}', 422, "invalid_request"),
    ('{"kind": "code", "input": {"language": "ruby", "code": "1"}}', 422, "invalid_request"),
    ('{"kind": "echo", "input": {"text": "x"}, "extra": 1}', 422, "invalid_request"),
    ('{"kind": "echo", "input": "text"}', 422, "invalid_request"),
    ('{"kind": "echo", "input": {"text": "x"}, "task_id": "../../x"}', 422, "invalid_request"),
])
def test_bad_rest_input_is_a_clear_4xx(rest, body, status, code):
    response = rest.post("/api/tasks", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code and response.json()["error"]["message"]


def test_oversize_unknown_and_odd_requests(rest):
    big = {"kind": "echo", "input": {"text": "x" * (2 << 20)}}
    assert rest.post("/api/tasks", json=big).status_code == 413
    huge = rest.post("/api/tasks", content=b"{" + b" " * (5 << 20) + b"}",
                     headers={"content-type": "application/json"})
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "too_large"
    assert rest.post("/api/tasks", content="kind=echo").status_code == 415
    assert rest.get("/api/tasks/0123456789abcdef").status_code == 404
    assert rest.get("/api/tasks/0123456789abcdef/events").status_code == 404
    assert rest.get("/api/tasks/0123456789abcdef/events", params={"after": "x"}).status_code == 400
    assert rest.get("/api/tasks/0123456789abcdef/events", params={"after": -1}).status_code == 422
    assert rest.post("/api/tasks/0123456789abcdef/cancel").status_code == 404
    assert rest.get("/api/tasks", params={"status": "weird"}).status_code == 422
    assert rest.get("/api/tasks", params={"limit": "many"}).status_code == 400
    assert rest.get("/api/nothing").json()["error"]["code"] == "not_found"


def test_what_gunicorn_refuses_before_the_app_is_json_too(web):
    """A request line over gunicorn's limit_request_line (4094) never reaches Flask: its
    answer is the API's JSON error all the same (aios/web/gunicorn_errors.py)."""
    host, port = web.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(f"GET /api/tasks?limit={'9' * 5000} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        raw = b""
        while chunk := conn.recv(65536):
            raw += chunk
    head, _, body = raw.decode("latin-1").partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 400 ") and "Content-Type: application/json" in head, raw
    assert json.loads(body)["error"]["code"] == "bad_request", body


def test_bad_socket_input_gets_an_error_ack_and_the_socket_survives(listener):
    for data in ["text", None, {"kind": "nope"}, {"kind": "code", "input": {"code": 1}},
                 {"kind": "echo", "input": {"text": "x" * (2 << 20)}}]:
        ack = listener.call("task:submit", data)
        assert ack["error"]["code"] in ("invalid_request", "too_large"), ack
    assert listener.call("task:subscribe", {"task_id": "0123456789abcdef"})["error"]["code"] \
        == "not_found"
    assert listener.call("task:subscribe", {"task_id": "0123456789abcdef", "after": -1}
                         )["error"]["code"] == "invalid_request"
    assert listener.call("task:cancel", {"task_id": "nope"})["error"]["code"] == "not_found"
    ack = listener.call("task:submit", {"kind": "echo", "input": {"text": "still here"}})
    assert listener.wait_final(ack["task_id"]) == "succeeded"


def test_a_task_id_submitted_twice_runs_once(rest):
    task_id = "idem-" + str(time.time_ns())
    body = {"kind": "code", "input": {"language": "bash", "code": "echo once"}, "task_id": task_id}
    first, second = rest.post("/api/tasks", json=body), rest.post("/api/tasks", json=body)
    assert first.json()["created"] is True and second.json()["created"] is False
    assert wait_for_task(rest, task_id)["attempt"] == 1
    time.sleep(1)
    events = rest.get(f"/api/tasks/{task_id}/events").json()["events"]
    assert [e["data"]["status"] for e in events if e["type"] == "status"] == \
        ["queued", "running", "succeeded"]


def test_resubscribing_with_the_last_seq_misses_nothing_and_doubles_nothing(web):
    first = TaskListener(web.url).connect()
    ack = first.call("task:submit", {"kind": "code", "input": {
        "language": "python", "code": COUNTING.format(n=20, pause=0.1)}})
    task_id = ack["task_id"]
    first.wait_for(lambda got: stdout_of(got.of(task_id)).count("\n") >= 4, 15, "some output")
    first.close()  # disconnect mid-task
    seen = first.of(task_id)
    last_seq = seen[-1]["seq"]
    time.sleep(0.5)  # events keep coming while nobody listens

    second = TaskListener(web.url).connect()
    try:
        ack = second.call("task:subscribe", {"task_id": task_id, "after": last_seq})
        assert "error" not in ack
        assert second.wait_final(task_id) == "succeeded"
        combined = seen + second.of(task_id)
    finally:
        second.close()
    assert [e["seq"] for e in combined] == list(range(1, len(combined) + 1))
    assert stdout_of(combined) == "".join(f"{i}\n" for i in range(20))


def test_cancel_a_running_infinite_loop(rest, listener, manager):
    ack = listener.call("task:submit", {"kind": "code", "input": {
        "language": "python", "code": "print('looping', flush=True)\nwhile True: pass",
        "timeout_s": 60}})
    task_id = ack["task_id"]
    listener.wait_for(lambda got: "looping" in stdout_of(got.of(task_id)), 15, "the loop to start")
    assert manager.containers(**{"aios.owner": f"task:{task_id}"})
    started = time.monotonic()
    assert listener.call("task:cancel", {"task_id": task_id})["task_id"] == task_id
    assert listener.wait_final(task_id, timeout=5) == "cancelled"
    assert time.monotonic() - started < 2.0
    assert rest.get(f"/api/tasks/{task_id}").json()["status"] == "cancelled"
    manager.wait_for(lambda: not manager.containers(**{"aios.owner": f"task:{task_id}"}), 3,
                     "the cancelled run's container to go")


def test_cancel_a_queued_task(own_stack):
    own_stack.worker(concurrency=1)
    web = own_stack.web()
    with rest_client(web) as rest:
        busy = submit(rest, "code", {"language": "bash", "code": "sleep 3"})
        queued = submit(rest, "echo", {"text": "never"})
        assert rest.get(f"/api/tasks/{queued}").json()["status"] == "queued"
        assert rest.post(f"/api/tasks/{queued}/cancel").json()["status"] == "cancelled"
        assert wait_for_task(rest, busy)["status"] == "succeeded"
        time.sleep(1)
        task = rest.get(f"/api/tasks/{queued}").json()
        events = rest.get(f"/api/tasks/{queued}/events").json()["events"]
    assert task["status"] == "cancelled" and task["attempt"] == 0
    assert [e["data"]["status"] for e in events] == ["queued", "cancelled"]


def test_whole_worker_sigkill_is_redelivered_quickly(own_stack):
    doomed = own_stack.worker("w-doomed")
    web = own_stack.web()
    with rest_client(web) as rest:
        task_id = submit(rest, "code", {"language": "python",
                                        "code": COUNTING.format(n=4, pause=1)})
        wait_for_output(rest, task_id, "0\n")
        doomed.kill()  # the whole worker: main process and pool children (OOM, docker kill)
        killed_at = time.monotonic()
        own_stack.worker("w-rescue")
        task = wait_for_task(rest, task_id, timeout=40)
        elapsed = time.monotonic() - killed_at
        events = rest.get(f"/api/tasks/{task_id}/events").json()["events"]
    assert task["status"] == "succeeded" and task["attempt"] == 2
    assert elapsed < 30, f"redelivered after {elapsed:.1f} s"
    assert any("attempt 2" in e["data"].get("text", "") for e in events if e["type"] == "log")
    assert task["result"]["stdout"] == "0\n1\n2\n3\n"


def test_a_killed_pool_child_is_redelivered(own_stack):
    worker = own_stack.worker("w-child", concurrency=1)
    web = own_stack.web()
    with rest_client(web) as rest:
        task_id = submit(rest, "code", {"language": "bash", "code": "echo start; sleep 3"})
        wait_for_output(rest, task_id, "start\n")
        group = subprocess.run(["pgrep", "-g", str(worker.proc.pid)], capture_output=True,
                               text=True).stdout.split()
        children = [int(pid) for pid in group if int(pid) != worker.proc.pid]
        assert children, "a prefork child runs the task"
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        task = wait_for_task(rest, task_id, timeout=40)
    assert task["status"] == "succeeded" and task["attempt"] == 2, task
    assert task["result"]["stdout"] == "start\n"


def test_redis_restart_loses_no_accepted_task(own_stack):
    worker = own_stack.worker("w-redis")
    web = own_stack.web()
    with rest_client(web) as rest:
        running = submit(rest, "code", {"language": "python",
                                        "code": COUNTING.format(n=6, pause=0.5)})
        wait_until(lambda: rest.get(f"/api/tasks/{running}").json()["status"] == "running", 15,
                   "the task to run")
        worker.stop()
        queued = [submit(rest, "echo", {"text": f"queued {i}"}) for i in range(5)]
        own_stack.redis.kill()  # SIGKILL: only what the AOF holds survives
        time.sleep(2)
        own_stack.redis.start()
        own_stack.worker("w-redis-2")
        results = [wait_for_task(rest, task_id, timeout=60) for task_id in queued + [running]]
        after = submit(rest, "echo", {"text": "after the restart"})
        assert wait_for_task(rest, after)["status"] == "succeeded"
    assert [r["status"] for r in results] == ["succeeded"] * 6
    assert [r["result"]["text"] for r in results[:5]] == [f"queued {i}" for i in range(5)]


def test_web_processes_share_the_message_queue(web, stack_env):
    from .stack import start_web
    other = start_web(stack_env, "web-b")  # eventlet: under gevent, a mixed pair (a migration)
    try:
        listener = TaskListener(web.url).connect()
        with rest_client(other) as rest_b:
            task_id = submit(rest_b, "code", {"language": "python",
                                              "code": COUNTING.format(n=3, pause=0.3)})
            ack = listener.call("task:subscribe", {"task_id": task_id, "after": 0})
            assert "error" not in ack
            assert listener.wait_final(task_id) == "succeeded"
        events = listener.of(task_id)
        listener.close()
    finally:
        other.stop()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert stdout_of(events) == "0\n1\n2\n"


def test_health_answers_within_a_second_when_a_dependency_hangs(own_stack):
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(16)  # accepts connections, never answers
    port = hanging.getsockname()[1]
    try:
        own_stack.environment["SANDBOX_MANAGER_URL"] = f"http://127.0.0.1:{port}"
        web = own_stack.web("web-hang", healthy=False)
        started = time.monotonic()
        response = httpx.get(web.url + "/health", timeout=5)
        elapsed = time.monotonic() - started
    finally:
        hanging.close()
    assert response.status_code == 503
    # The answer's own time, as the web measured it, is the promise (docs/api.md: within
    # 1 s); the client's adds the connection and the scheduling of a loaded machine (1.06 s
    # was seen with the CPU oversubscribed), and is still far from the 5 s it would wait.
    assert response.json()["elapsed_ms"] < 1000 and elapsed < 1.5, elapsed
    checks = response.json()["checks"]
    assert not checks["sandbox_manager"]["ok"] and checks["redis"]["ok"]
    assert not checks["workers"]["ok"], "no worker runs in this stack"


def test_soft_time_limit_fails_the_task_and_frees_its_sandbox(own_stack, manager):
    own_stack.environment.update(AIOS_TASK_SOFT_TIME_LIMIT_S="2", AIOS_TASK_TIME_LIMIT_S="10")
    own_stack.worker("w-limits")
    web = own_stack.web()
    with rest_client(web) as rest:
        task_id = submit(rest, "code", {"language": "python", "code": "while True: pass",
                                        "timeout_s": 60})
        task = wait_for_task(rest, task_id, timeout=20)
    assert task["status"] == "failed" and task["error"]["code"] == "time_limit"
    manager.wait_for(lambda: not manager.containers(**{"aios.owner": f"task:{task_id}"}), 5,
                     "the sandbox run to be killed")


def test_records_and_logs_expire_after_the_retention(own_stack):
    own_stack.environment.update(AIOS_TASK_RETENTION_S="2")
    own_stack.worker("w-retention")
    web = own_stack.web()
    with rest_client(web) as rest:
        task_id = submit(rest, "echo", {"text": "short-lived"})
        assert wait_for_task(rest, task_id)["status"] == "succeeded"
        assert rest.get(f"/api/tasks/{task_id}/events").json()["events"]
        time.sleep(2.5)
        assert rest.get(f"/api/tasks/{task_id}").status_code == 404
        assert task_id not in [t["task_id"] for t in rest.get("/api/tasks").json()["tasks"]]


def test_flower_needs_its_basic_auth(own_stack):
    from .stack import spawn
    from .support import free_port
    port = free_port()
    env = dict(own_stack.environment, FLOWER_BASIC_AUTH="admin:flower-secret-123")
    flower = spawn([sys.executable, "-m", "celery", "-A", "app.celery", "flower",
                    "--address=127.0.0.1", f"--port={port}"], env, "flower")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(url + "/healthcheck"), 30, "flower")
        assert httpx.get(url + "/").status_code == 401
        assert httpx.get(url + "/", auth=("admin", "wrong")).status_code == 401
        assert httpx.get(url + "/", auth=("admin", "flower-secret-123")).status_code == 200
    finally:
        flower.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("origin, allowed", [("file://", True), ("null", True),
                                             ("app://.", True), ("http://localhost:3000", True),
                                             ("https://evil.example", False)])
def test_electron_origins_are_allowed_and_others_refused(web, origin, allowed):
    async def connect_from(origin):
        try:
            async with raw_socketio(web.url, origin=origin):
                return True
        except websockets.exceptions.InvalidStatus:
            return False
    assert asyncio.run(connect_from(origin)) is allowed


def test_websocket_compression_is_declined(web):
    async def handshake():
        async with websockets.connect(websocket_url(web.url)) as ws:  # offers permessage-deflate
            return ws.response.headers.get("Sec-WebSocket-Extensions")
    assert asyncio.run(handshake()) is None


def round_trips_meanwhile(listener, work) -> list:
    """Ping round trips (s) of another client while `work` runs."""
    rtts, done = [], threading.Event()

    def ping():
        while not done.is_set():
            started = time.monotonic()
            listener.call("ping", {})
            rtts.append(time.monotonic() - started)
            time.sleep(0.01)
    pinger = threading.Thread(target=ping)
    pinger.start()
    try:
        work()
    finally:
        done.set()
        pinger.join()
    return rtts


def test_large_messages_do_not_stall_other_clients(web, listener):
    # 3 MiB: under the message limit (AIOS_MAX_REQUEST_BYTES, 4 MiB), over the input limit.
    big = json.dumps(["task:submit", {"kind": "echo", "input": {"text": "x" * (3 << 20)}}])

    async def send_big_messages():
        async with raw_socketio(web.url) as ws:
            for ack_id in range(3):
                await ws.send(f"42{ack_id}{big}")
                assert '"too_large"' in await asyncio.wait_for(ws.recv(), 10)
    rtts = round_trips_meanwhile(listener, lambda: asyncio.run(send_big_messages()))
    # eventlet's own unmasking took 0.25 s per MiB, the whole process blocked meanwhile.
    assert max(rtts) < 0.3, f"slowest ping {max(rtts):.3f} s"


def test_a_message_over_the_limit_closes_only_its_connection(web, listener):
    worker_pid = web.child_pid()

    async def send_64_mib_in_fragments():
        async with raw_socketio(web.url) as ws:
            with contextlib.suppress(websockets.exceptions.ConnectionClosed):
                await ws.send("x" * (1 << 20) for _ in range(64))  # 1 MiB frames
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 30)
            return ws.close_code
    # Closed as soon as the message passes the limit, not once 64 MiB were gathered, and read
    # as 1009 (message too big) every time by a client still writing: without the lingering
    # close 1 in 40 to 1 in 3 of these were a reset, read as 1006 (abnormal closure).
    codes = [asyncio.run(send_64_mib_in_fragments()) for _ in range(20)]
    assert collections.Counter(codes) == {1009: 20}
    assert web.child_pid() == worker_pid
    assert listener.call("ping", {"still": "here"}) == {"pong": True, "echo": {"still": "here"}}


def test_a_websocket_without_a_valid_token_is_closed_after_the_connect_deadline(own_stack):
    own_stack.environment["AIOS_SOCKET_CONNECT_TIMEOUT_S"] = "1"
    web = own_stack.web(healthy=False)  # no worker needed: nothing runs
    url = websocket_url(web.url)

    async def closed_after(ws) -> float:
        started = time.monotonic()
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        return time.monotonic() - started

    async def run():
        async with websockets.connect(url, ping_interval=None) as silent, \
                websockets.connect(url, ping_interval=None) as refused, \
                raw_socketio(web.url) as connected:
            await silent.recv()  # engine.io's open packet, and then not a word
            await refused.recv()
            await refused.send("40" + json.dumps({"token": "wrong-token-0123456789"}))
            assert (await refused.recv()).startswith("44")  # connect_error
            waits = await asyncio.gather(closed_after(silent), closed_after(refused))
            # The client that connected with the token stays past the deadline.
            await connected.send('421["ping",{"after":"deadline"}]')
            assert await asyncio.wait_for(connected.recv(), 5) == \
                '431[{"pong":true,"echo":{"after":"deadline"}}]'
            return waits
    for waited in asyncio.run(run()):
        assert 0.5 < waited < 5, waited


# --- chat --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fake_openai(web_worker_class):  # one per worker class: each run counts its own calls
    from ..fakes.llm_server import FakeLLM
    server = FakeLLM().start()
    yield server
    server.stop()


@pytest.fixture
def chat_stack(own_stack, fake_openai):
    own_stack.environment.update(OPENAI_API_KEY="sk-fake-key-for-tests",
                                 OPENAI_BASE_URL=fake_openai.base_url, OPENAI_MODEL="text",
                                 AIOS_LLM_MAX_RETRIES="1")
    own_stack.worker("w-chat")
    return own_stack.web("web-chat")


def chat(listener, model, **extra) -> str:
    ack = listener.call("task:submit", {"kind": "chat", "input": {
        "messages": [{"role": "user", "content": "hi"}], "model": model, **extra}})
    assert "error" not in ack, ack
    return ack["task_id"]


def test_without_a_key_chat_fails_fast_naming_what_to_set(rest, listener):
    assert rest.get("/api/providers").json() == {"providers": [], "hint": rest.get(
        "/api/providers").json()["hint"]}
    hint = rest.get("/api/providers").json()["hint"]
    assert "OPENAI_API_KEY" in hint and "OPENAI_COMPATIBLE_BASE_URL" in hint
    task_id = chat(listener, None)
    assert listener.wait_final(task_id, timeout=10) == "failed"
    error = rest.get(f"/api/tasks/{task_id}").json()["error"]
    assert error["code"] == "no_provider" and "OPENAI_API_KEY" in error["message"]


def test_chat_streams_tokens_and_ends_with_the_result(chat_stack, fake_openai):
    listener = TaskListener(chat_stack.url).connect()
    with rest_client(chat_stack) as rest:
        providers = rest.get("/api/providers").json()["providers"]
        assert providers == [{"name": "openai", "default_model": "text",
                              "models": providers[0]["models"]}]
        assert "sk-fake" not in rest.get("/api/providers").text
        task_id = chat(listener, None, temperature=0)
        assert listener.wait_final(task_id) == "succeeded"
        result = rest.get(f"/api/tasks/{task_id}").json()["result"]
    events = listener.of(task_id)
    listener.close()
    tokens = "".join(e["data"]["text"] for e in events if e["type"] == "token")
    assert tokens == result["text"] == "Hello world"
    assert result == {"text": "Hello world", "usage": {"input_tokens": 7, "output_tokens": 4},
                      "provider": "openai", "model": "text", "finish_reason": "stop"}


def test_a_fast_model_is_coalesced_and_loses_nothing(chat_stack):
    listener = TaskListener(chat_stack.url).connect()
    task_id = chat(listener, "long-2000")
    assert listener.wait_final(task_id) == "succeeded"
    events = listener.of(task_id)
    listener.close()
    tokens = [e for e in events if e["type"] == "token"]
    assert "".join(e["data"]["text"] for e in tokens) == "".join(f"t{i} " for i in range(2000))
    span = max(tokens[-1]["ts"] - tokens[0]["ts"], 0.001)
    assert len(tokens) <= 30 * span + 2, f"{len(tokens)} token events in {span:.2f} s"


def test_a_rate_limit_before_the_first_token_is_retried(chat_stack, fake_openai):
    listener = TaskListener(chat_stack.url).connect()
    task_id = chat(listener, "flaky-429")
    assert listener.wait_final(task_id) == "succeeded"
    listener.close()
    assert fake_openai.counts["flaky-429"] == 2


def test_provider_errors_fail_the_task_clearly(chat_stack):
    listener = TaskListener(chat_stack.url).connect()
    with rest_client(chat_stack) as rest:
        task_id = chat(listener, "fail-401")
        assert listener.wait_final(task_id) == "failed"
        assert rest.get(f"/api/tasks/{task_id}").json()["error"]["code"] == "authentication"
        task_id = chat(listener, "text", provider="nope")
        assert listener.wait_final(task_id) == "failed"
        assert "unknown provider" in rest.get(f"/api/tasks/{task_id}").json()["error"]["message"]
        task_id = chat(listener, "text", provider="mistral")
        assert listener.wait_final(task_id) == "failed"
        message = rest.get(f"/api/tasks/{task_id}").json()["error"]["message"]
        assert "'mistral' is not configured" in message and "MISTRAL_API_KEY" in message
    listener.close()


def test_cancelling_a_chat_closes_the_upstream_stream_within_a_second(chat_stack, fake_openai):
    listener = TaskListener(chat_stack.url).connect()
    task_id = chat(listener, "slow")
    listener.wait_for(lambda got: any(e["type"] == "token" for e in got.of(task_id)), 10,
                      "the first token")
    before = len(fake_openai.disconnects)
    cancelled_at = time.monotonic()
    listener.call("task:cancel", {"task_id": task_id})
    assert listener.wait_final(task_id, timeout=5) == "cancelled"
    listener.close()
    wait_until(lambda: len(fake_openai.disconnects) > before, 2, "the upstream to close")
    assert fake_openai.disconnects[-1] - cancelled_at < 1.0


def test_deterministic_answers_come_from_the_cache_unless_asked_not_to(chat_stack, fake_openai):
    listener = TaskListener(chat_stack.url).connect()
    question = [{"role": "user", "content": f"cache me {time.time_ns()}"}]

    def ask(**extra):
        ack = listener.call("task:submit", {"kind": "chat", "input": {
            "messages": question, "model": "text", "temperature": 0, **extra}})
        assert listener.wait_final(ack["task_id"]) == "succeeded"
        return [e for e in listener.of(ack["task_id"]) if e["type"] == "result"][0]["data"]

    before = fake_openai.counts.get("text", 0)
    first, second = ask(), ask()
    assert fake_openai.counts["text"] == before + 1, "the second answer came from the cache"
    assert second.pop("cached") is True and second == first
    assert "cached" not in ask(cache=False)
    assert fake_openai.counts["text"] == before + 2
    listener.close()


def test_a_retryable_failure_falls_back_to_the_next_pair(own_stack, fake_openai):
    own_stack.environment.update(OPENAI_API_KEY="sk-fake-key-for-tests",
                                 OPENAI_BASE_URL=fake_openai.base_url, AIOS_LLM_MAX_RETRIES="0",
                                 AIOS_LLM_FALLBACK="openai:fail-500,openai:text")
    own_stack.worker("w-fallback")
    web = own_stack.web("web-fallback")
    listener = TaskListener(web.url).connect()
    before = fake_openai.counts.get("fail-500", 0)
    task_id = chat(listener, None)
    assert listener.wait_final(task_id) == "succeeded"
    events = listener.of(task_id)
    listener.close()
    result = [e for e in events if e["type"] == "result"][0]["data"]
    assert (result["provider"], result["model"], result["text"]) == ("openai", "text",
                                                                     "Hello world")
    assert fake_openai.counts["fail-500"] == before + 1
    assert any("trying the next provider" in e["data"]["text"] for e in events
               if e["type"] == "log")


@pytest.fixture
def attachment_stack(own_stack, fake_openai, tmp_path):
    own_stack.environment.update(OPENAI_API_KEY="sk-fake-key-for-tests",
                                 OPENAI_BASE_URL=fake_openai.base_url, OPENAI_MODEL="text",
                                 AIOS_FILE_ROOTS=str(tmp_path / "documents"),
                                 AIOS_UPLOAD_DIR=str(tmp_path / "documents" / "uploads"),
                                 AIOS_ATTACHMENT_MAX_BYTES=str(1 << 20))
    (tmp_path / "documents").mkdir()
    own_stack.worker("w-files")
    return own_stack.web("web-files"), tmp_path


def test_chat_with_an_image_and_a_pdf_attached(attachment_stack, fake_openai):
    web, tmp_path = attachment_stack
    png(tmp_path / "documents" / "chart.png", (4000, 1000))
    pdf(tmp_path / "documents" / "report.pdf", ["Revenue grew 12 percent"])
    listener = TaskListener(web.url).connect()
    with rest_client(web) as rest:
        task_id = rest.post("/api/tasks", json={"kind": "chat", "input": {
            "messages": [{"role": "user", "content": "summarize"}],
            "attachments": [str(tmp_path / "documents" / "chart.png"), "report.pdf"]}}
        ).json()["task_id"]
        listener.call("task:subscribe", {"task_id": task_id, "after": 0})
        assert listener.wait_final(task_id) == "succeeded", rest.get(f"/api/tasks/{task_id}").text
    listener.close()
    sent = [r for r in fake_openai.requests if r["messages"][-1]["content"][0] ==
            {"type": "text", "text": "summarize"}][-1]
    _, image, document = sent["messages"][-1]["content"]
    assert image["image_url"]["url"].startswith("data:image/png;base64,")
    assert document["type"] == "file" and document["file"]["filename"] == "report.pdf"


def test_bad_attachments_are_refused_at_submit_with_the_reason(attachment_stack):
    web, tmp_path = attachment_stack
    documents = tmp_path / "documents"
    (tmp_path / "outside.txt").write_text("secret")
    (documents / "escape.txt").symlink_to(tmp_path / "outside.txt")
    (documents / "big.txt").write_bytes(b"x" * ((1 << 20) + 1))
    (documents / "tool.png").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(200)))
    cases = {str(tmp_path / "outside.txt"): "outside_roots", "../outside.txt": "outside_roots",
             "escape.txt": "outside_roots", "missing.pdf": "not_found", "big.txt": "too_large",
             "tool.png": "unsupported_type", ".": "not_a_file"}
    listener = TaskListener(web.url).connect()
    with rest_client(web) as rest:
        for path, code in cases.items():
            task_input = {"messages": [{"role": "user", "content": "hi"}], "attachments": [path]}
            response = rest.post("/api/tasks", json={"kind": "chat", "input": task_input})
            assert response.status_code == 422, (path, response.text)
            assert code in response.json()["error"]["message"], (path, response.text)
            assert "secret" not in response.text
            ack = listener.call("task:submit", {"kind": "chat", "input": task_input})
            assert ack["error"]["code"] == "invalid_request" and code in ack["error"]["message"]
        assert rest.get("/api/tasks").json()["tasks"] == []  # nothing was queued
    listener.close()
