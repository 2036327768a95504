"""Load and faults, made for real on loopback: long logs replayed whole, a worker cut off from
Redis while another takes its task over, a claim whose Redis call fails, a full event log."""

import hashlib
import json
import time

import httpx
import pytest

from aios.tasks.store import CLAIM
from ..fakes.llm_server import FakeLLM
from .faults import TcpProxy
from .stack import (TaskListener, backend_env, rest_client, start_web, start_worker,
                    wait_for_task, wait_until)


def submit(rest, kind: str, task_input: dict, **extra) -> str:
    response = rest.post("/api/tasks", json={"kind": kind, "input": task_input, **extra})
    assert response.status_code == 202, response.text
    return response.json()["task_id"]


def all_events(rest, task_id: str) -> list:
    """Every logged event over REST, following next_after."""
    events, after = [], 0
    while after is not None:
        page = rest.get(f"/api/tasks/{task_id}/events", params={"after": after}).json()
        events += page["events"]
        after = page["next_after"]
    return events


def test_twenty_thousand_events_replay_whole_with_the_final_status(own_stack):
    """A log longer than any page: a late subscriber gets every event, in order, once, and
    the final status; REST pages with next_after. (No worker: the log is written here.)"""
    import redis as redis_py
    from aios.tasks import keys
    from aios.tasks.events import EventLog, new_event
    web = own_stack.web("web-replay", healthy=False)  # no worker: the log is written here
    with rest_client(web) as rest:
        task_id = submit(rest, "echo", {"text": "x"})
        client = redis_py.Redis.from_url(own_stack.redis.url, decode_responses=True)
        pipe = client.pipeline(transaction=False)
        for i in range(20_000):
            pipe.rpush(keys.events(task_id), json.dumps(new_event(task_id, "stdout",
                                                                   {"text": f"{i}\n"})))
        pipe.hset(keys.record(task_id), "status", "succeeded")
        pipe.execute()
        EventLog(client, lambda room, events: None, 3600).append(
            task_id, "status", {"status": "succeeded"})
        listener = TaskListener(web.url).connect()
        # the ack follows the replay of 20,002 events: seconds on a busy machine
        ack = listener.call("task:subscribe", {"task_id": task_id, "after": 0}, timeout=60)
        assert ack["replayed"] == 20_002
        listener.wait_for(lambda got: len(got.events) >= 20_002, 30, "every event")
        events = listener.of(task_id)
        listener.close()
        assert [e["seq"] for e in events] == list(range(1, 20_003))
        assert events[-1]["data"] == {"status": "succeeded"}
        assert all_events(rest, task_id) == events
        first = rest.get(f"/api/tasks/{task_id}/events", params={"limit": 10}).json()
        assert len(first["events"]) == 10 and first["next_after"] == 10
        assert rest.get(f"/api/tasks/{task_id}/events",
                        params={"limit": 0}).status_code == 422


def test_twelve_thousand_chunks_come_whole_to_a_late_subscriber(rest, web):
    task_id = submit(rest, "code", {"language": "python", "timeout_s": 60, "code": (
        "import sys, time\nfor i in range(12000):\n    sys.stdout.write(f'{i} ')\n"
        "    sys.stdout.flush()\n    time.sleep(0.0003)  # each a chunk of its own")})
    assert wait_for_task(rest, task_id, timeout=60)["status"] == "succeeded"
    listener = TaskListener(web.url).connect()
    listener.call("task:subscribe", {"task_id": task_id, "after": 0})
    events = listener.of(task_id)
    listener.close()
    assert events[-1]["data"] == {"status": "succeeded"}
    stdout = "".join(e["data"]["text"] for e in events if e["type"] == "stdout")
    assert stdout == "".join(f"{i} " for i in range(12000)), "nothing lost or reordered"
    assert len(events) < 1000, "joined into few events, not one per chunk"


def test_a_full_event_log_says_so_and_the_result_is_still_recorded(own_stack):
    own_stack.environment.update(AIOS_TASK_MAX_LOG_BYTES=str(64 << 10))
    own_stack.worker("w-cap")
    web = own_stack.web("web-cap")
    with rest_client(web) as rest:
        task_id = submit(rest, "code", {"language": "python", "timeout_s": 60, "code": (
            "import time\nfor i in range(40):\n    print('x' * 10000, flush=True)\n"
            "    time.sleep(0.01)\nprint('end')")})
        task = wait_for_task(rest, task_id, timeout=60)
        assert task["status"] == "succeeded" and task["result"]["stdout"].endswith("end\n")
        events = all_events(rest, task_id)
        logged = sum(len(json.dumps(e["data"])) for e in events if e["type"] == "stdout")
        assert logged <= 64 << 10
        assert any("event log reached" in e["data"].get("text", "") for e in events
                   if e["type"] == "log")
        assert events[-1]["data"] == {"status": "succeeded"}


def test_a_claim_whose_redis_call_fails_once_still_runs(own_stack):
    """The claim's script is refused once (as a full Redis refuses it): the task must not be
    acknowledged unclaimed, and still runs."""
    proxy = TcpProxy(own_stack.redis.port)
    try:
        env = dict(own_stack.environment, REDIS_URL=proxy.url(), CELERY_BROKER_URL=proxy.url(),
                   CELERY_RESULT_BACKEND=proxy.url())
        worker = start_worker(env, "w-claim-fault")
        web = own_stack.web("web-claim-fault")
        proxy.refuse_once(hashlib.sha1(CLAIM.encode()).hexdigest().encode(),
                          b"-OOM command not allowed when used memory > 'maxmemory'.")
        with rest_client(web) as rest:
            task_id = submit(rest, "echo", {"text": "still here"})
            task = wait_for_task(rest, task_id, timeout=30)
        assert proxy.refused == 1, "Redis refused the claim once"
        assert task["status"] == "succeeded" and task["result"] == {"text": "still here"}
        assert worker.proc.poll() is None
        worker.stop()
    finally:
        proxy.close()


APPENDER = ("echo started; if [ ! -e attempted ]; then touch attempted; sleep 30; fi; "
            "echo x >> log.txt; echo appended")


@pytest.fixture
def appender_model():
    fake = FakeLLM({"appender": [
        {"tools": [("run_code", {"language": "bash", "code": APPENDER, "timeout_s": 60})]},
        {"text": "Appended once."}]}).start()
    yield fake
    fake.stop()


def test_a_worker_cut_off_from_redis_stops_and_only_one_attempt_runs_on(own_stack, manager,
                                                                       appender_model):
    """Worker A reaches Redis through a proxy that stalls past the heartbeat TTL mid-task;
    worker B takes the task over. A stops before B starts, so the body runs once, and A,
    back in touch, writes nothing."""
    proxy = TcpProxy(own_stack.redis.port)
    env = backend_env(own_stack.redis.url, manager, OPENAI_API_KEY="sk-chaos",
                      OPENAI_BASE_URL=appender_model.base_url, AIOS_LLM_MAX_RETRIES="0")
    cut_off = dict(env, REDIS_URL=proxy.url(), CELERY_BROKER_URL=proxy.url(),
                   CELERY_RESULT_BACKEND=proxy.url())
    a = start_worker(cut_off, "w-a", concurrency=1)
    web = start_web(env, "web-stall")
    b = None
    try:
        with rest_client(web) as rest:
            task_id = submit(rest, "agent", {"goal": "append", "model": "script:appender",
                                             "tools": ["run_code"], "session_id": "stall-session"})
            wait_until(lambda: any(e["type"] == "stdout" and "started" in e["data"]["text"]
                                   for e in all_events(rest, task_id)), 30, "A to start")
            b = start_worker(env, "w-b", concurrency=1)
            proxy.stall()
            stalled_at = time.monotonic()
            task = wait_for_task(rest, task_id, timeout=60)
            assert time.monotonic() - stalled_at < 30, "B finished while A was still cut off"
            proxy.resume()
            time.sleep(3)  # A is back in touch: whatever it still tries to write is refused
            events = all_events(rest, task_id)
        assert task["status"] == "succeeded" and task["attempt"] == 2, task
        statuses = [e["data"]["status"] for e in events if e["type"] == "status"]
        assert statuses == ["queued", "running", "queued", "running", "succeeded"]
        requeued = [i for i, e in enumerate(events) if e["type"] == "status"
                    and e["data"]["status"] == "queued"][1]
        after = [e for e in events[requeued:] if e["type"] == "stdout"]
        assert "".join(e["data"]["text"] for e in after) == "started\nappended\n", \
            "only attempt 2 wrote after the requeue"
        sandbox = [c for c in manager.containers(**{"aios.owner": "session:stall-session"})]
        assert len(sandbox) == 1
        with manager.client() as api:
            sandbox_id = [s["id"] for s in api.get("/v1/sandboxes").json()["sandboxes"]
                          if s["owner"] == "session:stall-session"][0]
            log = api.get(f"/v1/sandboxes/{sandbox_id}/files", params={"path": "log.txt"})
            assert log.content == b"x\n", "the body ran once"
            api.delete(f"/v1/sandboxes/{sandbox_id}")
        assert a.proc.poll() is None and b.proc.poll() is None, "no worker exited"
    finally:
        proxy.resume()
        for worker in (a, b, web):
            if worker:
                worker.stop()
        proxy.close()


def test_a_queued_task_whose_message_was_lost_is_redriven_and_kept_alive(own_stack):
    """Behind a long task, a task waits longer than the retention, and its message is lost
    (the queue list deleted): the watchdog pushes it again and keeps its record alive."""
    import redis as redis_py
    own_stack.environment.update(AIOS_TASK_RETENTION_S="8", AIOS_REDRIVE_AFTER_S="2")
    own_stack.worker("w-redrive", concurrency=1)
    web = own_stack.web("web-redrive")
    with rest_client(web) as rest:
        long_id = submit(rest, "code", {"language": "bash", "code": "sleep 14; echo done",
                                        "timeout_s": 30})
        wait_until(lambda: rest.get(f"/api/tasks/{long_id}").json()["status"] == "running",
                   30, "the long task to run")
        task_id = submit(rest, "echo", {"text": "found again"})
        client = redis_py.Redis.from_url(own_stack.redis.url)
        assert client.delete("celery") == 1, "its message is gone"
        time.sleep(10)  # queued for longer than the retention
        assert rest.get(f"/api/tasks/{task_id}").json()["status"] == "queued", (
            all_events(rest, long_id), all_events(rest, task_id))
        task = wait_for_task(rest, task_id, timeout=30)
        assert task["status"] == "succeeded" and task["result"] == {"text": "found again"}
        assert wait_for_task(rest, long_id)["status"] == "succeeded"


def test_a_sandbox_manager_at_capacity_is_waited_for(spawn_manager):
    """Cap 1 on the manager, 6 code tasks, 3 at a time in the worker: 6 succeed (the others
    wait as Retry-After says and say so), and one of them is cancelled while it waits."""
    from .stack import RedisServer
    manager = spawn_manager(max_active_runs=1)
    redis = RedisServer().start()
    env = backend_env(redis.url, manager)
    worker = start_worker(env, "w-capacity", concurrency=3)
    web = start_web(env, "web-capacity")
    try:
        with rest_client(web) as rest:
            ids = [submit(rest, "code", {"language": "bash", "code": f"sleep 1; echo {i}"})
                   for i in range(6)]
            tasks = [wait_for_task(rest, task_id, timeout=90) for task_id in ids]
            assert [t["status"] for t in tasks] == ["succeeded"] * 6, tasks
            assert [t["result"]["stdout"] for t in tasks] == [f"{i}\n" for i in range(6)]
            waited = [e for task_id in ids for e in all_events(rest, task_id)
                      if e["type"] == "log" and "waiting for a sandbox" in e["data"]["text"]]
            assert waited, "a task that waited says so"
            # a task waiting for capacity is cancelled at once
            blocker = submit(rest, "code", {"language": "bash", "code": "sleep 20"})
            wait_until(lambda: rest.get(f"/api/tasks/{blocker}").json()["status"] == "running",
                       30, "the blocker to run")
            time.sleep(1)
            waiting = submit(rest, "code", {"language": "bash", "code": "echo never"})
            wait_until(lambda: any("waiting for a sandbox" in e["data"].get("text", "")
                                   for e in all_events(rest, waiting)), 30, "it to wait")
            started = time.monotonic()
            rest.post(f"/api/tasks/{waiting}/cancel")
            assert wait_for_task(rest, waiting, timeout=10)["status"] == "cancelled"
            assert time.monotonic() - started < 3
            rest.post(f"/api/tasks/{blocker}/cancel")
            assert wait_for_task(rest, blocker, timeout=10)["status"] == "cancelled"
        assert worker.proc.poll() is None
    finally:
        web.stop()
        worker.stop()
        redis.kill()


def test_redis_full_refuses_new_tasks_and_loses_none(own_stack):
    """Redis at its maxmemory (noeviction): submits get 503 with Retry-After, never a 5xx
    else; /health says why; the worker never exits; every accepted task ends once space is
    freed."""
    import redis as redis_py
    client = redis_py.Redis.from_url(own_stack.redis.url)
    worker = own_stack.worker("w-full")
    web = own_stack.web("web-full")
    accepted, refused = [], []
    with rest_client(web) as rest:
        client.config_set("maxmemory", str(client.info("memory")["used_memory"] + (24 << 20)))
        # Tasks that print while Redis fills up under them: they meet the full Redis
        slow_printer = "import time\nfor _ in range(10):\n    print('y' * 50000, flush=True)\n" \
                       "    time.sleep(0.3)"
        for _i in range(3):
            accepted.append(submit(rest, "code", {"language": "python", "code": slow_printer}))
        chunk = b"x" * (1 << 20)
        for i in range(200):  # fill it up to the brim
            try:
                client.set(f"filler:{i}", chunk)
            except redis_py.exceptions.OutOfMemoryError:
                break
        # The web reads Redis's memory use at most every RedisPressure.ttl_s (0.5 s): within
        # that window a few more tasks may be accepted, each logging 1 MB (more than the
        # high-water mark keeps free), which is not what this test is about
        time.sleep(0.6)
        for _i in range(30):  # tasks that print a lot, while Redis is (nearly) full
            response = rest.post("/api/tasks", json={"kind": "code", "input": {
                "language": "python", "code": "print('y' * 500000)"}})
            assert response.status_code in (202, 503), response.text
            if response.status_code == 503:
                assert int(response.headers["Retry-After"]) > 0
                assert response.json()["error"]["code"] in ("storage_full", "unavailable")
                refused.append(response)
            else:
                accepted.append(response.json()["task_id"])
        assert refused, "a full Redis refuses new tasks"
        health = httpx.get(web.url + "/health", timeout=2)
        assert health.status_code == 503, health.text
        assert "full" in health.json()["checks"]["redis"].get("error", ""), (
            health.text, [r.json() for r in refused][:3], client.info("memory")["maxmemory"])
        time.sleep(5)  # the worker meets the full Redis with whatever it took
        assert worker.proc.poll() is None, "the worker never exits"
        client.delete(*[f"filler:{i}" for i in range(200)])
        for task_id in accepted:
            assert wait_for_task(rest, task_id, timeout=120)["status"] in (
                "succeeded", "failed", "cancelled")
        assert rest.post("/api/tasks", json={"kind": "echo", "input": {"text": "ok"}}
                         ).status_code == 202
        assert httpx.get(web.url + "/health", timeout=2).status_code == 200
    assert worker.proc.poll() is None


def test_sigterm_lets_short_tasks_end_and_hands_long_ones_back(own_stack):
    """A deploy's SIGTERM: the worker takes no more tasks, lets a short one end, and after
    its grace time hands a long one back to the queue without counting the attempt (one
    attempt allowed here, and it still runs), then exits; another worker completes it."""
    import signal as signals
    own_stack.environment.update(AIOS_WORKER_GRACE_S="2", AIOS_TASK_MAX_ATTEMPTS="1")
    first = own_stack.worker("w-term", concurrency=2)
    web = own_stack.web("web-term")
    with rest_client(web) as rest:
        short = submit(rest, "code", {"language": "bash", "code": "sleep 1; echo short"})
        long = submit(rest, "code", {"language": "bash", "code": "echo long; sleep 8; echo end",
                                     "timeout_s": 30})
        wait_until(lambda: all(rest.get(f"/api/tasks/{t}").json()["status"] == "running"
                               for t in (short, long)), 30, "both to run")
        first.proc.send_signal(signals.SIGTERM)  # the worker's main process only
        first.proc.wait(timeout=20)
        assert wait_for_task(rest, short)["status"] == "succeeded"
        assert rest.get(f"/api/tasks/{long}").json()["status"] == "queued"
        own_stack.worker("w-term-2")
        task = wait_for_task(rest, long, timeout=30)
        assert task["status"] == "succeeded" and task["result"]["stdout"] == "long\nend\n"
        texts = [e["data"].get("text", "") for e in all_events(rest, long) if e["type"] == "log"]
        assert any("goes back to the queue" in t for t in texts)


def test_a_burst_of_300_code_tasks_all_succeed_and_leave_no_container(rest, manager):
    ids = [submit(rest, "code", {"language": "python", "code": f"print({i} * 2)"})
           for i in range(300)]
    tasks = [wait_for_task(rest, task_id, timeout=180) for task_id in ids]
    assert [t["status"] for t in tasks] == ["succeeded"] * 300
    assert [t["result"]["stdout"] for t in tasks] == [f"{i * 2}\n" for i in range(300)]
    manager.wait_for(lambda: not [c for c in manager.containers()
                                  if c.labels.get("aios.owner", "").startswith("task:")
                                  and c.labels["aios.owner"][5:] in set(ids)],
                     10, "every run's container to go")
