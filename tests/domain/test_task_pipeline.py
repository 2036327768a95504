"""TaskService and TaskRunner in-process, against a real redis-server: submit, claim, run a
kind, record its end, cancel, duplicate deliveries, lost attempts, the log's cap and replay.
The kinds are the tests' own, given to the service and the runner as the worker gives
aios.kinds; the Socket.IO emit is a list (conftest.Emitted)."""

import concurrent.futures
import threading
import time
from types import SimpleNamespace

import pytest

from aios.tasks import keys
from aios.tasks.errors import BadTaskInput, TaskFailed, failed
from aios.tasks.events import new_event
from aios.tasks.kind import Kind, TaskInput
from aios.tasks.service import TaskNotFound

from .conftest import QUEUE, logged, make_runner, make_service

DEPS = SimpleNamespace(name="the deps")
WAIT_S = 5  # the longest a test waits for something that takes a fraction of a second


def statuses(events: list[dict]) -> list[str]:
    return [e["data"]["status"] for e in events if e["type"] == "status"]


def seqs_are_consecutive(events: list[dict]) -> bool:
    return [e["seq"] for e in events] == list(range(events[0]["seq"],
                                                    events[0]["seq"] + len(events)))


def wait_for(predicate, what: str, timeout: float = WAIT_S):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def revoked():
    return []


@pytest.fixture
def build(store, events, messages, revoked):
    """build(kinds, **runner_options) -> (a TaskService, a TaskRunner) over one table."""
    def build(kinds: dict, **options):
        return (make_service(store, events, kinds, messages, revoked.append),
                make_runner(store, events, kinds, DEPS, **options))
    return build


@pytest.fixture
def in_thread():
    """Runs a call in a thread of its own (a task executing while the test acts)."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    yield pool.submit
    pool.shutdown(wait=True)


# --- kinds ------------------------------------------------------------------------------

class WordsInput(TaskInput):
    text: str


def run_words(ctx, task_input, deps):
    for word in task_input["text"].split():
        ctx.emit("stdout", {"text": word + "\n"})
    ctx.emit("log", {"text": "printed\n"})
    return {"text": task_input["text"], "deps": deps.name}


def run_refused(ctx, task_input, deps):
    ctx.emit("stdout", {"text": "before the failure\n"})
    raise TaskFailed("sandbox_error", "the sandbox said no")


def run_broken(ctx, task_input, deps):
    return {}["missing key"]


class Waits:
    """A kind that signals it started, then waits for a cancel (by ctx.pause, or by the
    abort it registers with ctx.on_cancel, as a sandbox run or a model stream does). Cut
    short, it raises what the kinds raise (tasks.errors.failed: `cancelled` after a cancel)."""

    def __init__(self, how: str):
        self.how = how
        self.started = threading.Event()
        self.runs = 0

    def __call__(self, ctx, task_input, deps):
        self.runs += 1
        ctx.emit("stdout", {"text": "waiting\n"})
        if self.how == "pause":
            self.started.set()
            if ctx.pause(WAIT_S):
                raise failed(ctx, RuntimeError("the wait was cut short"), "interrupted")
            return {"woken": False}
        stopped = threading.Event()
        ctx.on_cancel(stopped.set)
        self.started.set()
        if not stopped.wait(WAIT_S):
            return {"woken": False}
        raise failed(ctx, RuntimeError("the stream was closed under me"), "stream_cut")


WORDS = Kind(WordsInput, run_words)


class Counts:
    def __init__(self):
        self.runs = 0

    def __call__(self, ctx, task_input, deps):
        self.runs += 1
        return {"run": self.runs}


# --- submit -----------------------------------------------------------------------------

def test_submit_records_a_queued_task_logs_it_and_queues_its_message(
        build, store, events, emitted, messages, redis_client):
    service, _ = build({"words": WORDS})
    submitted = service.submit("words", {"text": "hello"}, task_id="task-submit-1")

    assert submitted.created
    assert submitted.task == {"task_id": "task-submit-1", "kind": "words", "status": "queued"}
    record = store.get("task-submit-1")
    assert (record["status"], record["attempt"], record["result"]) == ("queued", 0, None)
    assert [(e["type"], e["data"], e["seq"]) for e in logged(events, "task-submit-1")] == \
        [("status", {"status": "queued"}, 1)]
    assert redis_client.lrange(QUEUE, 0, -1) == ["message-for:task-submit-1"]
    assert messages.asked == ["task-submit-1"]
    assert emitted.messages == []  # no socket can be in the room of a task not yet made


def test_a_task_id_submitted_twice_is_queued_once(build, redis_client):
    service, _ = build({"words": WORDS})
    service.submit("words", {"text": "one"}, task_id="task-twice-1")
    again = service.submit("words", {"text": "two"}, task_id="task-twice-1")

    assert not again.created
    assert again.task["status"] == "queued"
    assert redis_client.llen(QUEUE) == 1


@pytest.mark.parametrize("kind, task_input, task_id, status", [
    ("nope", {"text": "x"}, None, 422),
    ("words", {"text": 1}, None, 422),
    ("words", {"text": "x", "more": 1}, None, 422),
    ("words", {"text": "x"}, "bad id!", 422),
    ("words", {"text": "x" * 20_000}, None, 413),
])
def test_bad_input_is_refused_and_nothing_is_queued(build, redis_client, kind, task_input,
                                                    task_id, status):
    service, _ = build({"words": WORDS})
    with pytest.raises(BadTaskInput) as refused:
        service.submit(kind, task_input, task_id=task_id)
    assert refused.value.status == status
    assert redis_client.llen(QUEUE) == 0


# --- execute ----------------------------------------------------------------------------

def test_execute_streams_output_in_seq_order_and_records_the_result(
        build, store, events, emitted):
    service, runner = build({"words": WORDS})
    task_id = service.submit("words", {"text": "one two three"}).task["task_id"]

    assert runner.execute(task_id) == "succeeded"

    record = store.get(task_id)
    assert record["status"] == "succeeded"
    assert record["result"] == {"text": "one two three", "deps": "the deps"}
    assert (record["error"], record["attempt"]) == (None, 1)
    log = logged(events, task_id)
    assert seqs_are_consecutive(log) and log[0]["seq"] == 1
    assert statuses(log) == ["queued", "running", "succeeded"]
    types = [e["type"] for e in log]
    assert types[0:2] == ["status", "status"] and types[-2:] == ["result", "status"]
    assert "".join(e["data"]["text"] for e in log if e["type"] == "stdout") == \
        "one\ntwo\nthree\n"
    assert types.index("log") > max(i for i, t in enumerate(types) if t == "stdout")
    assert log[-2]["data"] == record["result"]
    # what went live is the log after the (never emitted) queued event, seq for seq
    live = emitted.events(task_id)
    assert [(e["seq"], e["type"], e["data"]) for e in live] == \
        [(e["seq"], e["type"], e["data"]) for e in log[1:]]


def test_a_kind_raising_task_failed_fails_the_task_with_its_code(build, store, events):
    service, runner = build({"refused": run_refused})
    task_id = service.submit("refused", {}).task["task_id"]

    assert runner.execute(task_id) == "failed"

    record = store.get(task_id)
    assert record["status"] == "failed" and record["result"] is None
    assert record["error"] == {"code": "sandbox_error", "message": "the sandbox said no"}
    log = logged(events, task_id)
    assert [e["type"] for e in log][-3:] == ["stdout", "error", "status"]  # output first
    assert log[-2]["data"] == record["error"] and statuses(log)[-1] == "failed"


def test_a_plain_exception_fails_the_task_with_its_class_name_and_no_traceback(
        build, store, redis_client):
    service, runner = build({"broken": run_broken})
    task_id = service.submit("broken", {}).task["task_id"]

    assert runner.execute(task_id) == "failed"

    record = store.get(task_id)
    assert record["error"] == {"code": "KeyError", "message": "'missing key'"}
    stored = str(redis_client.hgetall(keys.record(task_id))) + \
        str(redis_client.lrange(keys.events(task_id), 0, -1))
    assert "Traceback" not in stored and "run_broken" not in stored


class HardLimit(Exception):
    """What the worker's time limit raises in a task (Celery's SoftTimeLimitExceeded)."""


def test_a_time_limit_error_fails_the_task_as_time_limit(store, events, messages):
    def slow(ctx, task_input, deps):
        raise HardLimit()
    service = make_service(store, events, {"slow": slow}, messages, lambda task_id: None)
    runner = make_runner(store, events, {"slow": slow}, DEPS, time_limit_errors=(HardLimit,))
    task_id = service.submit("slow", {}).task["task_id"]

    assert runner.execute(task_id) == "failed"
    assert store.get(task_id)["error"]["code"] == "time_limit"


# --- cancel -----------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["pause", "on_cancel"])
def test_cancel_while_running_stops_the_kind_and_ends_cancelled(
        how, build, store, events, in_thread, revoked):
    kind = Waits(how)
    service, runner = build({"waits": kind})
    task_id = service.submit("waits", {}).task["task_id"]
    outcome = in_thread(runner.execute, task_id)
    assert kind.started.wait(WAIT_S)

    asked = time.monotonic()
    assert service.cancel(task_id)["status"] == "running"  # the worker stops it
    assert outcome.result(WAIT_S) == "cancelled"

    assert time.monotonic() - asked < 1.0
    assert revoked == []  # nothing to revoke: the message was taken already
    record = store.get(task_id)
    assert (record["status"], record["result"], record["error"]) == ("cancelled", None, None)
    log = logged(events, task_id)
    assert statuses(log) == ["queued", "running", "cancelled"]
    assert "waiting\n" in [e["data"].get("text") for e in log]  # its output is kept


def test_cancel_while_queued_ends_it_at_once_and_a_later_delivery_does_not_run_it(
        build, events, revoked):
    kind = Counts()
    service, runner = build({"counts": kind})
    task_id = service.submit("counts", {}).task["task_id"]

    assert service.cancel(task_id)["status"] == "cancelled"
    assert revoked == [task_id]
    assert runner.execute(task_id) == "cancelled"
    assert kind.runs == 0
    assert statuses(logged(events, task_id)) == ["queued", "cancelled"]
    assert service.cancel(task_id)["status"] == "cancelled"  # final: unchanged


# --- deliveries and attempts ------------------------------------------------------------

def test_a_duplicate_delivery_after_the_end_does_not_run_the_task_again(build, store, events):
    kind = Counts()
    service, runner = build({"counts": kind})
    task_id = service.submit("counts", {}).task["task_id"]

    assert runner.execute(task_id) == "succeeded"
    assert runner.execute(task_id) == "succeeded"  # the claim saw it was done

    assert kind.runs == 1
    assert store.get(task_id)["result"] == {"run": 1}
    assert statuses(logged(events, task_id)) == ["queued", "running", "succeeded"]


def test_a_duplicate_delivery_while_it_runs_does_not_run_it_twice(
        build, store, events, in_thread):
    kind = Waits("pause")
    service, first = build({"waits": kind})
    second = make_runner(store, events, {"waits": kind}, DEPS)  # another worker
    task_id = service.submit("waits", {}).task["task_id"]
    outcome = in_thread(first.execute, task_id)
    assert kind.started.wait(WAIT_S)

    assert second.execute(task_id) == "running"  # its heartbeat is alive
    service.cancel(task_id)
    assert outcome.result(WAIT_S) == "cancelled"
    assert kind.runs == 1


def lose_the_worker(store, redis_client, task_id: str) -> int:
    """A worker claims the task and dies: its heartbeat runs out (deleted here)."""
    running = new_event(task_id, "status", {"status": "running"})
    claim = store.claim(task_id, "a-worker-that-dies", running, max_attempts=99)
    assert claim.outcome == "claimed"
    redis_client.delete(keys.heartbeat(task_id))
    return claim.attempt


def test_a_task_whose_worker_was_lost_runs_again_and_says_so(
        build, store, events, redis_client):
    kind = Counts()
    service, runner = build({"counts": kind}, max_attempts=3)
    task_id = service.submit("counts", {}).task["task_id"]
    assert lose_the_worker(store, redis_client, task_id) == 1

    assert runner.execute(task_id) == "succeeded"

    assert kind.runs == 1 and store.get(task_id)["attempt"] == 2
    texts = [e["data"].get("text", "") for e in logged(events, task_id)]
    assert any("restarted (attempt 2)" in text for text in texts)


def test_max_attempts_exhausted_fails_the_task_without_running_it(
        build, store, events, emitted, redis_client):
    kind = Counts()
    service, runner = build({"counts": kind}, max_attempts=2)
    task_id = service.submit("counts", {}).task["task_id"]
    for _ in range(2):
        lose_the_worker(store, redis_client, task_id)

    assert runner.execute(task_id) == "exhausted"

    assert kind.runs == 0
    record = store.get(task_id)
    assert record["status"] == "failed"
    assert record["error"]["code"] == "too_many_attempts"
    log = logged(events, task_id)
    assert [e["type"] for e in log[-2:]] == ["error", "status"] and seqs_are_consecutive(log)
    assert statuses(log)[-1] == "failed"
    assert [e["type"] for e in emitted.events(task_id)] == ["error", "status"]
    assert not redis_client.sismember(keys.RUNNING, task_id)


def test_a_stopping_worker_hands_the_task_back_without_counting_the_attempt(
        build, store, events, in_thread, messages, redis_client):
    kind = Waits("pause")
    service, runner = build({"waits": kind})
    task_id = service.submit("waits", {}).task["task_id"]
    outcome = in_thread(runner.execute, task_id, messages)
    assert kind.started.wait(WAIT_S)

    store.request_release(task_id)  # what a stopping worker asks of its tasks
    assert outcome.result(WAIT_S) == "requeued"

    assert store.get(task_id)["status"] == "queued"
    assert redis_client.lrange(QUEUE, 0, -1) == [f"message-for:{task_id}"] * 2
    assert statuses(logged(events, task_id)) == ["queued", "running", "queued"]
    redis_client.delete(keys.release(task_id))
    again = Counts()
    runner = make_runner(store, events, {"waits": again}, DEPS, max_attempts=1)
    assert runner.execute(task_id) == "succeeded"  # the handed-back attempt was not spent
    assert again.runs == 1


# --- the log ----------------------------------------------------------------------------

def test_the_log_stops_at_its_cap_says_so_and_the_result_is_still_recorded(
        build, store, events):
    def chatty(ctx, task_input, deps):
        for n in range(200):
            ctx.emit("log", {"text": f"line {n:03d} " + "x" * 80 + "\n"})
        return {"lines": 200}
    service, runner = build({"chatty": chatty}, max_log_bytes=2000)
    task_id = service.submit("chatty", {}).task["task_id"]

    assert runner.execute(task_id) == "succeeded"

    assert store.get(task_id)["result"] == {"lines": 200}
    log = logged(events, task_id)
    lines = [e for e in log if e["data"].get("text", "").startswith("line ")]
    notes = [e for e in log if "reached 2000 bytes" in e["data"].get("text", "")]
    assert 10 <= len(lines) < 25 and len(notes) == 1
    assert log.index(notes[0]) > log.index(lines[-1])
    assert [e["type"] for e in log[-2:]] == ["result", "status"]
    assert seqs_are_consecutive(log)


def test_replay_after_a_seq_gives_the_rest_of_the_log_once(build):
    service, runner = build({"words": WORDS})
    task_id = service.submit("words", {"text": "a b c"}).task["task_id"]
    runner.execute(task_id)
    whole = service.events(task_id, after=0)
    assert len(whole) >= 5

    for after in range(len(whole) + 1):
        assert service.events(task_id, after=after) == whole[after:]
    pages, seq = [], 0
    while page := service.events(task_id, after=seq, limit=2):
        pages += page
        seq = page[-1]["seq"]
    assert pages == whole

    with pytest.raises(TaskNotFound):
        service.events("no-such-task-1", after=0)
    with pytest.raises(BadTaskInput):
        service.events(task_id, after=-1)
