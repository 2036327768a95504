"""The Celery message a store script pushes, against the one kombu's own producer pushes,
both into a real redis-server (a database of its own: no worker consumes there)."""

import json
import time

import pytest
import redis as redis_lib
from celery import Celery

from aios.celery_app import RUN_TASK
from aios.tasks.broker import TaskMessages
from aios.tasks.events import new_event
from aios.tasks.store import TaskStore

PER_MESSAGE = {"delivery_tag"}  # a fresh uuid in every message, by design


@pytest.fixture
def quiet_db(redis_server):
    url = redis_server.url.rsplit("/", 1)[0] + "/15"
    client = redis_lib.Redis.from_url(url, decode_responses=True)
    client.flushdb()
    yield url, client
    client.flushdb()


def test_the_message_is_the_one_kombu_would_push(quiet_db):
    url, client = quiet_db
    celery = Celery(broker=url)
    celery.send_task(RUN_TASK, args=["task-1234"], task_id="task-1234", ignore_result=True)
    queued_by_kombu = client.keys("*")
    kombu = json.loads(client.lpop("celery"))

    ours = TaskMessages(celery, RUN_TASK)("task-1234")
    assert ours.queue in queued_by_kombu
    built = json.loads(ours.payload)
    for message in (kombu, built):
        for name in PER_MESSAGE:
            assert message["properties"].pop(name)
    assert built == kombu


def test_create_queues_the_message_once_and_only_when_it_creates(quiet_db):
    url, client = quiet_db
    store = TaskStore(client, retention_s=60, heartbeat_ttl_s=5)
    messages = TaskMessages(Celery(broker=url), RUN_TASK)

    def create():
        return store.create("task-5678", "echo", {"text": "x"},
                            new_event("task-5678", "status", {"status": "queued"}),
                            messages("task-5678"))
    assert create() == 1
    assert create() == 0  # the id exists: nothing queued again
    queued = [json.loads(m) for m in client.lrange(messages.queue, 0, -1)]
    assert [m["headers"]["id"] for m in queued] == ["task-5678"]
    assert store.get("task-5678")["status"] == "queued"


def test_an_orphan_is_requeued_with_its_message(quiet_db):
    url, client = quiet_db
    store = TaskStore(client, retention_s=60, heartbeat_ttl_s=0.05)
    messages = TaskMessages(Celery(broker=url), RUN_TASK)
    event = new_event("task-9999", "status", {"status": "queued"})
    store.create("task-9999", "echo", {"text": "x"}, event, messages("task-9999"))
    client.delete(messages.queue)  # taken by a worker...
    claim = store.claim("task-9999", "w1", new_event("task-9999", "status",
                                                     {"status": "running"}), max_attempts=3)
    assert claim.outcome == "claimed"
    assert not store.requeue_if_orphaned("task-9999", messages("task-9999"))  # heartbeat on
    time.sleep(0.1)  # ...which died: its heartbeat expires
    assert store.requeue_if_orphaned("task-9999", messages("task-9999"))
    assert store.get("task-9999")["status"] == "queued"
    assert client.llen(messages.queue) == 1
