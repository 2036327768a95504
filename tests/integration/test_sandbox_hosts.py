"""Sandboxes on several hosts: two real managers on this engine (names and ports of their
own, one token), a real Celery worker and web placing work across both (SANDBOX_MANAGER_URLS);
one manager SIGKILLed mid-burst and started again where it was."""

import secrets
import signal
import threading
import time
from types import SimpleNamespace

import httpx
import pytest
import redis

from aios.agent.sessions import AgentSessions
from aios.sandbox.artifacts import ArtifactStore
from aios.sandbox.pool import SandboxPool, manager_key
from aios.tools.base import ToolContext, ToolError
from aios.tools.run_code import RunCode

from .stack import RedisServer, backend_env, rest_client, start_web, start_worker
from .support import wait_until

RUN_ACK = '"POST /v1/run?stream=true HTTP/1.1" 200'  # uvicorn's access log: a run started
CODE = "import time\ntime.sleep(0.5)\nprint('done', {i})"
LOST_NOTE = "was lost while the code ran"


def runs_started(manager) -> int:
    """The manager's own record of the runs it started (its access log, since its start)."""
    return manager.log.read_text(errors="replace").count(RUN_ACK)


def submit_code(rest, i: int) -> str:
    response = rest.post("/api/tasks", json={"kind": "code", "input": {
        "language": "python", "code": CODE.format(i=i), "timeout_s": 30}})
    assert response.status_code == 202, response.text
    return response.json()["task_id"]


def final_tasks(rest, task_ids: list, timeout: float) -> dict:
    def ended():
        tasks = {t: rest.get(f"/api/tasks/{t}").json() for t in task_ids}
        done = all(task["status"] in ("succeeded", "failed", "cancelled")
                   for task in tasks.values())
        return tasks if done else None
    return wait_until(ended, timeout, f"{len(task_ids)} tasks to end")


def old_instances(manager, instance_labels: set) -> list:
    return [c for c in manager.containers() if c.labels.get("aios.instance") in instance_labels]


@pytest.fixture
def two_managers(spawn_manager):
    token = "it-token-" + secrets.token_hex(12)
    suffix = secrets.token_hex(3)
    started = {}

    def start(which):
        try:
            started[which] = spawn_manager(name=f"hosts-{which}-{suffix}", token=token,
                                           pool_size=2)
        except BaseException as exc:  # noqa: BLE001 - reported below, from the test's thread
            started[which + "-error"] = exc
    threads = [threading.Thread(target=start, args=(which,)) for which in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(started) == {"a", "b"}, started
    return SimpleNamespace(**started, token=token, spawn=spawn_manager)


@pytest.fixture
def hosts_stack(two_managers):
    server = RedisServer().start()
    env = backend_env(server.url, two_managers.a,
                      SANDBOX_MANAGER_URLS=f"{two_managers.a.url},{two_managers.b.url}")
    services = {}
    threads = [threading.Thread(target=lambda: services.__setitem__(
                   "worker", start_worker(env, "w-hosts", concurrency=4))),
               threading.Thread(target=lambda: services.__setitem__(
                   "web", start_web(env, "web-hosts")))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    worker, web = services.get("worker"), services.get("web")
    if not (worker and web):
        for service in (worker, web):
            if service:
                service.stop()
        server.kill()
        pytest.fail("the worker or the web did not start (see their logs)")
    yield SimpleNamespace(web=web, worker=worker, **vars(two_managers))
    web.stop()
    worker.stop()
    server.kill()


def test_runs_spread_over_both_hosts_survive_one_killed_and_return_to_it(hosts_stack):
    s = hosts_stack
    started = time.monotonic()
    with rest_client(s.web) as rest:
        checks = rest.get("/health").json()["checks"]["sandbox_manager"]
        assert checks["ok"] and [m["ok"] for m in checks["managers"]] == [True, True]
        assert {m["name"] for m in checks["managers"]} == {s.a.name, s.b.name}

        burst = [submit_code(rest, i) for i in range(40)]
        # mid-burst: B has started runs, and runs are in flight (4 at a time, 0.5 s each)
        wait_until(lambda: runs_started(s.b) >= 4, 40, "runs on manager B")
        b_before_kill = runs_started(s.b)
        b_instances = {c.labels["aios.instance"] for c in s.b.containers()}
        s.b.stop(signal.SIGKILL)
        killed_at = time.monotonic()

        tasks = final_tasks(rest, burst, 60)
        failed = {t: task.get("error") for t, task in tasks.items()
                  if task["status"] != "succeeded"}
        assert not failed, failed
        a_runs, b_runs = runs_started(s.a), runs_started(s.b)  # B's log: up to its kill
        assert b_before_kill > 0 and a_runs > 0, (a_runs, b_before_kill)
        # each started run is in one manager's record; a lost one was run again elsewhere,
        # with the task's log saying so
        rerun = [t for t in burst if any(
            e["type"] == "log" and LOST_NOTE in e["data"].get("text", "")
            for e in rest.get(f"/api/tasks/{t}/events").json()["events"])]
        assert rerun, "no run was in flight on the killed manager: the kill came too late"
        assert a_runs + b_runs == 40 + len(rerun), "a run started twice without a word"
        for t in rerun:
            assert tasks[t]["result"]["stdout"].startswith("done")

        degraded = rest.get("/health")
        sandbox_check = degraded.json()["checks"]["sandbox_manager"]
        assert degraded.status_code == 200 and sandbox_check["ok"]
        down = [m for m in sandbox_check["managers"] if not m["ok"]]
        assert [m["key"] for m in down] == [manager_key(s.b.url)] and down[0]["error"]
        assert manager_key(s.b.url) in sandbox_check["degraded"]
        print(f"burst done {time.monotonic() - killed_at:.1f} s after the kill; "
              f"A {a_runs} runs, B {b_runs} before its kill, {len(rerun)} rerun")

        # started again where it was: its start removes what its killed run left behind
        b_again = s.spawn(name=s.b.name, port=int(s.b.url.rsplit(":", 1)[1]), token=s.token)
        assert old_instances(b_again, b_instances) == []
        more = [submit_code(rest, 100 + i) for i in range(12)]
        tasks = final_tasks(rest, more, 40)
        assert all(task["status"] == "succeeded" for task in tasks.values()), tasks
        assert runs_started(b_again) > 0, "no new run reached the manager that came back"
        assert all(m["ok"] for m in rest.get("/health").json()["checks"]["sandbox_manager"][
            "managers"])
    print(f"whole scenario {time.monotonic() - started:.1f} s")


def test_a_conversation_whose_sandbox_host_dies_gets_a_clear_error_then_a_new_host(
        two_managers, redis_server, tmp_path):
    m = two_managers
    pool = SandboxPool.of([m.a.url, m.b.url], m.token)
    sessions = AgentSessions(redis.Redis.from_url(redis_server.url, decode_responses=True), 600)
    deps = SimpleNamespace(
        settings=SimpleNamespace(agent_max_seconds=60, agent_session_ttl_s=600,
                                 agent_sandbox_idle_s=300, tool_result_max_chars=4000),
        sandbox=pool, agent_sessions=sessions, artifacts=ArtifactStore(tmp_path, 600))
    tool, session = RunCode(deps, network=False), "conv-" + secrets.token_hex(6)

    def run_context() -> ToolContext:
        return ToolContext(task_id=secrets.token_hex(8), emit=lambda *event: None,
                           cancelled=threading.Event(), on_cancel=lambda abort: None,
                           session_id=session)
    try:
        tool.run({"language": "python", "code": "x = 41"}, run_context())
        kept = sessions.sandbox(session)
        holder, other = (m.a, m.b) if kept.endswith("@" + manager_key(m.a.url)) else (m.b, m.a)
        assert kept.endswith("@" + manager_key(holder.url))
        instances = {c.labels["aios.instance"] for c in holder.containers()}
        holder.stop(signal.SIGKILL)

        run = run_context()
        with pytest.raises(ToolError) as raised:
            tool.run({"language": "python", "code": "x + 1"}, run)
        message = str(raised.value)
        assert "sandbox_host_unavailable" not in message  # the words, for the model
        assert f"the session's sandbox host {manager_key(holder.url)} is unavailable" in message
        assert "the next call starts a new sandbox on another host" in message
        assert sessions.sandbox(session) is None, "the lost sandbox is still the session's"

        again = tool.run({"language": "python", "code": "print(6 * 7)"}, run)
        assert again.structured["stdout"] == "42\n"
        assert sessions.sandbox(session).endswith("@" + manager_key(other.url))
        pool.destroy(sessions.sandbox(session))
    finally:
        pool.close()
    # the killed manager's sandbox: removed by its own start under the same name
    back = m.spawn(name=holder.name, port=int(holder.url.rsplit(":", 1)[1]), token=m.token)
    assert old_instances(back, instances) == []
    assert httpx.get(back.url + "/health", timeout=5).status_code == 200
