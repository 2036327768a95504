"""The sandbox API end to end on a real dockerd."""

import json
import threading
import time

import httpx
import pytest

from .support import exec_in, run

V1_ROUTES = [("POST", "/v1/run"), ("GET", "/v1/sandboxes"), ("POST", "/v1/sandboxes"),
             ("GET", "/v1/sandboxes/x"), ("DELETE", "/v1/sandboxes/x"),
             ("POST", "/v1/sandboxes/x/exec"), ("GET", "/v1/sandboxes/x/files?path=a"),
             ("PUT", "/v1/sandboxes/x/files?path=a")]


def test_health_needs_no_token_and_reports_each_check(manager):
    body = httpx.get(manager.url + "/health").json()
    assert body["status"] == "ok"
    assert {"docker", "image", "hardening"} <= set(body["checks"])
    assert body["counts"]["pool_size"] == 2


@pytest.mark.parametrize("token", ["", "wrong-token-0123456789"])
@pytest.mark.parametrize("method, path", V1_ROUTES)
def test_every_v1_route_needs_the_token(manager, token, method, path):
    with manager.client(token=token) as client:
        response = client.request(method, path, json={})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_python_and_bash_with_stdin_and_files(api):
    result = run(api,
                 "import sys; print(sys.stdin.read().upper()); print(open('data/in.txt').read())",
                 stdin="hello", files={"data/in.txt": "from a file"})
    assert result["stdout"] == "HELLO\nfrom a file\n"
    assert (result["exit_code"], result["end_reason"], result["timed_out"]) == (0, "exited", False)
    result = run(api, "echo out; echo err >&2; exit 3", language="bash")
    assert (result["stdout"], result["stderr"], result["exit_code"]) == ("out\n", "err\n", 3)
    assert result["cpu_time_ms"] >= 0 and result["peak_memory_bytes"] > 0


def test_a_crash_reports_its_signal(api):
    result = run(api, "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    assert (result["end_reason"], result["signal"], result["exit_code"]) == (
        "signaled", "SIGSEGV", 139)


def stream_lines(client, url, body):
    """(seconds since the request, parsed line) for each NDJSON line as it arrives."""
    started = time.monotonic()
    with client.stream("POST", url, json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        return [(time.monotonic() - started, json.loads(line)) for line in response.iter_lines()]


def test_run_streams_output_while_it_runs(api):
    code = "import time\nprint('first')\ntime.sleep(1.5)\nprint('second')"
    lines = stream_lines(api, "/v1/run?stream=true", {"language": "python", "code": code})
    t_first, t_last, last = lines[0][0], lines[-1][0], lines[-1][1]
    early = "".join(line["text"] for t, line in lines if t < t_first + 0.5)
    assert early == "first\n", "the first line arrives on its own, long before the end"
    assert last["type"] == "result" and last["result"]["stdout"] == "first\nsecond\n"
    assert t_last - t_first > 1.2


def test_session_lifecycle_keeps_files_between_execs(api, manager):
    created = api.post("/v1/sandboxes", json={"ttl_s": 120, "timeout_s": 5, "owner": "task-42"})
    assert created.status_code == 201
    sandbox = created.json()
    assert sandbox["limits"]["timeout_s"] == 5 and sandbox["owner"] == "task-42"
    sid = sandbox["id"]
    assert sid in [s["id"] for s in api.get("/v1/sandboxes").json()["sandboxes"]]
    assert api.get(f"/v1/sandboxes/{sid}").json()["id"] == sid
    [container] = manager.containers(**{"aios.kind": "session", "aios.owner": "task-42"})
    assert int(container.labels["aios.expires_at"]) > time.time()

    exec_in(api, sid, language="python", code="open('state.txt','w').write('kept')")
    assert exec_in(api, sid, cmd=["cat", "state.txt"])["stdout"] == "kept"
    assert api.put(f"/v1/sandboxes/{sid}/files", params={"path": "up/bin.dat"},
                   content=bytes(range(256))).status_code == 204
    assert exec_in(api, sid, language="bash", code="wc -c < up/bin.dat")["stdout"].strip() == "256"
    downloaded = api.get(f"/v1/sandboxes/{sid}/files", params={"path": "up/bin.dat"})
    assert downloaded.content == bytes(range(256))

    assert api.delete(f"/v1/sandboxes/{sid}").status_code == 204
    assert api.get(f"/v1/sandboxes/{sid}").status_code == 404
    assert exec_in.__name__ and api.post(f"/v1/sandboxes/{sid}/exec",
                                         json={"cmd": ["true"]}).status_code == 404
    manager.wait_for(lambda: not manager.containers(**{"aios.owner": "task-42"}),
                     what="the session container to go")


def test_session_exec_streams(api, session):
    lines = stream_lines(api, f"/v1/sandboxes/{session}/exec?stream=true",
                         {"language": "bash", "code": "echo a; sleep 1; echo b >&2"})
    assert [line["type"] for _, line in lines] == ["stdout", "stderr", "result"]
    assert lines[1][0] - lines[0][0] > 0.7


def test_a_busy_session_answers_409(api, session):
    def slow():
        exec_in(api, session, language="python", code="import time; time.sleep(2)")

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(0.5)
    busy = api.post(f"/v1/sandboxes/{session}/exec", json={"cmd": ["true"]})
    worker.join()
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "busy"
    assert exec_in(api, session, cmd=["true"])["exit_code"] == 0


@pytest.mark.parametrize("body, status, code", [
    ('{"language": "python", "code": ', 400, "malformed_json"),
    ('[1, 2]', 422, "invalid_request"),
    ('{"language": "cobol", "code": "x"}', 422, "invalid_request"),
    ('{"code": "print(1)"}', 422, "invalid_request"),
    ('{"language": "python", "code": "1", "network": true}', 422, "invalid_request"),
    ('{"language": "python", "code": "1", "timeout_s": -1}', 422, "invalid_request"),
    ('{"language": "python", "code": "1", "limits": {"memory_mb": 999999}}', 422,
     "invalid_request"),
    ('{"language": "python", "code": "1", "files": {"../escape": "x"}}', 400, "bad_path"),
    ('{"language": "python", "code": "1", "files": {"/etc/x": "x"}}', 400, "bad_path"),
    # Found by schemathesis-style fuzzing: each was a 500 (or worse) before.
    ('{"language": "python", "code": "\\ud800"}', 422, "invalid_request"),
    ('{"language": "python", "code": "1", "stdin": "\\udfff"}', 422, "invalid_request"),
    ('{"language": "python", "code": "1", "files": {"a.txt": "\\ud800"}}', 422, "invalid_request"),
    ('{"language": "python", "code": "1", "timeout_s": Infinity}', 422, "invalid_request"),
    ('{"language": "python", "code": "1", "limits": {"cpus": 1e-300}}', 422, "invalid_request"),
])
def test_bad_run_requests_get_a_clear_json_error(api, body, status, code):
    response = api.post("/v1/run", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


def test_a_request_cannot_take_the_manager_down(api, manager):
    # cpus that round to nano_cpus=0 meant "no CPU limit": the sandbox failed the hardening
    # check and the whole manager refused to serve (503) until the next probe.
    tiny = api.post("/v1/sandboxes", json={"limits": {"cpus": 1e-9}})
    assert tiny.status_code == 422, tiny.text
    assert httpx.get(manager.url + "/health").json()["checks"]["hardening"]["ok"]
    # A non-finite idle TTL made a session whose description is not JSON: a 500, and every
    # later GET /v1/sandboxes a 500 too, until the session expired.
    endless = api.post("/v1/sandboxes", content='{"idle_ttl_s": Infinity}',
                       headers={"content-type": "application/json"})
    assert endless.status_code == 422, endless.text
    assert api.get("/v1/sandboxes").status_code == 200


def test_oversize_input_is_413(api, manager):
    big = "x" * (600 << 10)
    assert api.post("/v1/run", json={"language": "python", "code": big}).status_code == 413
    assert api.post("/v1/run", json={"language": "python", "code": "1",
                                     "stdin": "y" * (2 << 20)}).status_code == 413
    many = {f"f{i}.txt": "" for i in range(100)}
    assert api.post("/v1/run", json={"language": "python", "code": "1",
                                     "files": many}).status_code == 413
    huge = api.post("/v1/run", content=b"{" + b" " * (40 << 20) + b"}",
                    headers={"content-type": "application/json"})
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "too_large"


def test_wrong_content_type_and_unknown_routes(api):
    assert api.post("/v1/run", content="language=python").status_code == 415
    missing = api.get("/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert api.get("/v1/sandboxes/does-not-exist").status_code == 404
    assert api.post("/v1/sandboxes/nope/exec", json={"cmd": ["true"]}).status_code == 404
    assert api.post("/v1/sandboxes", json={"ttl_s": 10**9}).status_code == 422
    no_path = api.put("/v1/sandboxes/nope/files", content=b"raw bytes are fine")
    assert no_path.status_code == 422, "a missing ?path= is not a media type problem"
    wrong_method = api.request("TRACE", "/v1/sandboxes")
    assert wrong_method.status_code == 405 and "GET" in wrong_method.headers["allow"]


def test_exec_needs_code_or_cmd(api, session):
    for body in ({}, {"code": "1"}, {"cmd": []},
                 {"cmd": ["true"], "language": "python", "code": "1"}):
        response = api.post(f"/v1/sandboxes/{session}/exec", json=body)
        assert response.status_code == 422, body


def test_sessions_expire_after_their_ttl(api, manager):
    sid = api.post("/v1/sandboxes", json={"ttl_s": 1, "owner": "ttl-test"}).json()["id"]
    manager.wait_for(lambda: api.get(f"/v1/sandboxes/{sid}").status_code == 404, 5,
                     "the session to expire")
    manager.wait_for(lambda: not manager.containers(**{"aios.owner": "ttl-test"}), 5,
                     "the reaper to remove the expired container")


def test_the_pool_serves_runs_and_refills(api, manager):
    health = lambda: httpx.get(manager.url + "/health").json()["counts"]  # noqa: E731
    manager.wait_for(lambda: health()["pool_ready"] == 2, 20, "a full pool")
    pooled_before = {c.id for c in manager.containers(**{"aios.kind": "pool"})}
    for _ in range(3):
        assert run(api, "print(1)")["stdout"] == "1\n"
    manager.wait_for(lambda: health()["pool_ready"] == 2, 20, "the pool to refill")
    pooled_after = {c.id for c in manager.containers(**{"aios.kind": "pool"})}
    assert len(pooled_after) == 2 and pooled_before.isdisjoint(pooled_after), \
        "each pooled container serves one run and is replaced"
    manager.wait_for(lambda: not manager.containers(**{"aios.kind": "oneshot"}), 10,
                     "no one-shot container left")


def test_runs_with_their_own_limits_bypass_the_pool(api):
    result = run(api, "print(open('/sys/fs/cgroup/memory/memory.limit_in_bytes').read())",
                 limits={"memory_mb": 96})
    assert int(result["stdout"]) == 96 << 20


def test_caps_answer_429_with_retry_after(spawn_manager):
    capped = spawn_manager(max_active_runs=1, max_sessions=1)
    api = capped.client()
    first = api.post("/v1/sandboxes", json={})
    second = api.post("/v1/sandboxes", json={})
    assert first.status_code == 201
    assert second.status_code == 429 and int(second.headers["retry-after"]) > 0
    assert second.json()["error"]["code"] == "at_capacity"

    slow = threading.Thread(target=lambda: run(api, "import time; time.sleep(2)"))
    slow.start()
    time.sleep(0.8)
    refused = api.post("/v1/run", json={"language": "python", "code": "print(1)"})
    slow.join()
    assert refused.status_code == 429 and "retry-after" in refused.headers
    assert run(api, "print(1)")["stdout"] == "1\n"


def burst(manager, method: str, path: str, bodies: list[dict]) -> list[httpx.Response]:
    """The requests at once, each from its own thread and connection."""
    start, answers = threading.Barrier(len(bodies)), [None] * len(bodies)

    def send(i):
        with manager.client() as client:
            start.wait()
            answers[i] = client.request(method, path, json=bodies[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_concurrent_creates_never_pass_the_session_cap(spawn_manager):
    capped = spawn_manager(max_sessions=2)
    most, stop = [0], threading.Event()

    def watch():  # the most session containers that ever existed at once
        while not stop.is_set():
            most[0] = max(most[0], len(capped.containers(**{"aios.kind": "session"})))
            stop.wait(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        answers = burst(capped, "POST", "/v1/sandboxes", [{"owner": f"race-{i}"} for i in range(8)])
    finally:
        stop.set()
        watcher.join()
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * 2 + [429] * 6, [a.text for a in answers]
    for refused in (a for a in answers if a.status_code == 429):
        assert int(refused.headers["retry-after"]) > 0
        assert refused.json()["error"]["code"] == "at_capacity"
    assert most[0] <= 2, f"{most[0]} session containers existed at once; the cap is 2"
    api = capped.client()
    assert len(api.get("/v1/sandboxes").json()["sandboxes"]) == 2
    for created in (a.json()["id"] for a in answers if a.status_code == 201):
        assert api.delete(f"/v1/sandboxes/{created}").status_code == 204
    assert api.post("/v1/sandboxes", json={}).status_code == 201, "deleting frees the slots"


def test_a_failed_create_gives_its_slot_back(spawn_manager):
    # Docker refuses more CPUs than the host has: the create fails after the cap check.
    capped = spawn_manager(max_sessions=1, maxima__cpus=100000)
    api = capped.client()
    for _ in range(3):
        failed = api.post("/v1/sandboxes", json={"limits": {"cpus": 99999}})
        assert failed.status_code == 503, failed.text
    assert api.post("/v1/sandboxes", json={}).status_code == 201


def test_concurrent_runs_never_pass_the_run_cap(spawn_manager):
    capped = spawn_manager(max_active_runs=2)
    body = {"language": "python", "code": "import time; time.sleep(2); print('ran')"}
    answers = burst(capped, "POST", "/v1/run", [body] * 8)
    assert sorted(a.status_code for a in answers) == [200] * 2 + [429] * 6
    assert all(a.json()["stdout"] == "ran\n" for a in answers if a.status_code == 200)
    assert all("retry-after" in a.headers for a in answers if a.status_code == 429)
    counts = httpx.get(capped.url + "/health").json()["counts"]
    assert counts["active_runs"] == 0


def test_a_session_that_expires_while_starting_is_not_reaped_mid_launch(spawn_manager):
    # Found by schemathesis: a TTL shorter than the start (1% of a CPU takes seconds) let the
    # reaper remove the half-started container as stale: 503 "sandbox did not start".
    manager = spawn_manager()
    api = manager.client()
    created = api.post("/v1/sandboxes", json={"ttl_s": 0.001, "limits": {"cpus": 0.01}})
    assert created.status_code == 201, created.text
    assert api.get(f"/v1/sandboxes/{created.json()['id']}").status_code == 404, "expired"
    manager.wait_for(lambda: not manager.containers(), 10, "the reaper to remove it")


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_disconnects_leaves_no_container(spawn_manager, stream):
    manager = spawn_manager()
    with manager.client(timeout=1.5) as client, pytest.raises(httpx.ReadTimeout):
        body = {"language": "python", "code": "while True: pass", "timeout_s": 60}
        if stream:
            with client.stream("POST", "/v1/run?stream=true", json=body) as response:
                for _ in response.iter_lines():
                    pass
        else:
            client.post("/v1/run", json=body)
    assert manager.containers(**{"aios.kind": "oneshot"}), "the run should have started"
    manager.wait_for(lambda: not manager.containers(**{"aios.kind": "oneshot"}), 5,
                     "the abandoned run's container to go")
    assert httpx.get(manager.url + "/health").json()["counts"]["active_runs"] == 0


def test_long_expired_sandboxes_of_a_manager_that_is_gone_are_reaped(spawn_manager,
                                                                      docker_client):
    """A manager killed for good (say, a test run's, under a name never used again) leaves
    its sandboxes to nobody: another manager on the engine removes them once they are well
    past their expiry, and leaves a foreign sandbox that has only just expired alone."""
    import secrets as tokens
    dead = "it-gone-" + tokens.token_hex(4)

    def leftover(expired_s_ago: float) -> str:
        labels = {"aios.sandbox": "1", "aios.manager": dead, "aios.kind": "pool",
                  "aios.id": tokens.token_hex(8),
                  "aios.expires_at": str(int(time.time() - expired_s_ago))}
        return docker_client.containers.create("aios-sandbox", ["true"], labels=labels).id

    long_gone, just_expired = leftover(3600), leftover(60)
    try:
        manager = spawn_manager()
        manager.wait_for(lambda: not _exists(docker_client, long_gone), 10,
                         "the long-expired leftover to go")
        assert _exists(docker_client, just_expired), "only another manager's own reaper's"
    finally:
        for container in (long_gone, just_expired):
            if _exists(docker_client, container):
                docker_client.api.remove_container(container, force=True)


def _exists(docker_client, container_id: str) -> bool:
    return bool(docker_client.api.containers(all=True, filters={"id": container_id}))


def test_orphans_of_an_earlier_run_are_removed_at_start(spawn_manager):
    import signal as signals
    first = spawn_manager(pool_size=1, name="it-orphans")
    first.wait_for(lambda: first.containers(**{"aios.kind": "pool"}), 20, "a pooled container")
    first.stop(signals.SIGKILL)  # dies without cleaning up
    assert first.containers(), "a killed manager leaves its containers"
    second = spawn_manager(name="it-orphans")
    instance = {c.labels["aios.instance"] for c in second.containers()}
    assert len(instance) <= 1, "only the new instance's containers may remain"
    assert not [c for c in first.containers() if c.labels["aios.kind"] == "pool"]
