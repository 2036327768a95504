"""Fixtures for the in-process domain tests: one real redis-server per session, the real
TaskStore, EventLog and RunContext over it; no Celery, no gunicorn, no docker."""

import itertools

import pytest

from pydantic import ConfigDict

from aios.resources import redis_client as make_redis_client
from aios.tasks.broker import QueuedMessage
from aios.tasks.context import RunContext
from aios.tasks.events import EventLog, new_event
from aios.tasks.kind import Kind, TaskInput
from aios.tasks.runner import TaskRunner
from aios.tasks.service import TaskService
from aios.tasks.store import TaskStore
from tests.integration.stack import RedisServer

RETENTION_S = 3600
QUEUE = "aios-domain-test-queue"  # a Redis list nothing pops: the "Celery queue" here
_ids = itertools.count(1)


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer(fsync="everysec").start()
    yield server
    server.kill()


@pytest.fixture
def redis_url(redis_server):
    """The URL of the session's redis-server, emptied (FLUSHALL) before each test."""
    client = make_redis_client(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture
def redis_client(redis_url):
    client = make_redis_client(redis_url)
    yield client
    client.close()


class Emitted:
    """What the EventLog would send to Socket.IO: (room, events) messages, in order."""

    def __init__(self):
        self.messages: list[tuple[str, tuple]] = []

    def __call__(self, room: str, events: tuple) -> None:
        self.messages.append((room, tuple(dict(e) for e in events)))

    def events(self, task_id: str) -> list[dict]:
        return [e for room, events in self.messages if room == f"task:{task_id}"
                for e in events]


class Messages:
    """TaskService's and TaskRunner's message_for: the task's queued message, recorded."""

    def __init__(self):
        self.asked: list[str] = []

    def __call__(self, task_id: str) -> QueuedMessage:
        self.asked.append(task_id)
        return QueuedMessage(QUEUE, f"message-for:{task_id}")


@pytest.fixture
def emitted():
    return Emitted()


@pytest.fixture
def store(redis_client):
    return TaskStore(redis_client, retention_s=RETENTION_S, heartbeat_ttl_s=5)


@pytest.fixture
def events(redis_client, emitted):
    return EventLog(redis_client, emitted, retention_s=RETENTION_S)


@pytest.fixture
def messages():
    return Messages()


def queue_task(store: TaskStore, kind: str, task_input: dict, task_id: str = "") -> str:
    """A queued task of any kind, recorded the way TaskService.submit records one (without
    its input validation, which knows only the product's kinds)."""
    task_id = task_id or f"domain-task-{next(_ids):06d}"
    event = new_event(task_id, "status", {"status": "queued"})
    assert store.create(task_id, kind, task_input, event, QueuedMessage(QUEUE, task_id))
    return task_id


class AnyInput(TaskInput):
    """The input model of a test kind given as a bare function: any JSON object."""
    model_config = ConfigDict(extra="allow")


def as_kinds(kinds: dict) -> dict[str, Kind]:
    """{name: Kind or run(ctx, task_input, deps) -> dict} as the pipeline's kinds table."""
    return {name: k if isinstance(k, Kind) else Kind(AnyInput, k) for name, k in kinds.items()}


def make_runner(store: TaskStore, events: EventLog, kinds: dict, deps=None,
                **options) -> TaskRunner:
    """A TaskRunner running `kinds` (see as_kinds), its watcher quick for the tests."""
    options.setdefault("heartbeat_interval_s", 0.2)
    return TaskRunner(store, events, as_kinds(kinds), deps, **options)


def make_service(store: TaskStore, events: EventLog, kinds: dict, message_for, revoke,
                 max_input_bytes: int = 10_000) -> TaskService:
    return TaskService(store, events, as_kinds(kinds), message_for, revoke, max_input_bytes)


@pytest.fixture
def running_ctx(store, events):
    """running_ctx(kind="chat", **options) -> a RunContext of a task claimed by this test:
    its events go to the real log, fenced by its attempt, like a worker's."""
    made = []

    def make(kind: str = "chat", task_input=None, context_class=RunContext,
             **options) -> RunContext:
        task_id = queue_task(store, kind, task_input or {})
        running = new_event(task_id, "status", {"status": "running"})
        claim = store.claim(task_id, "domain-test-worker", running, max_attempts=3)
        assert claim.outcome == "claimed"
        ctx = context_class(task_id, events, claim.attempt, **options)
        made.append(ctx)
        return ctx
    yield make
    for ctx in made:
        ctx.close()  # stops the output sender thread


def logged(events: EventLog, task_id: str, after: int = 0) -> list[dict]:
    return events.after(task_id, after) or []


def closed_log(ctx: RunContext) -> list[dict]:
    """The events a run context logged, its joined output sent first."""
    ctx.close()
    return logged(ctx.events, ctx.task_id)
