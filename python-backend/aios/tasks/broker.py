"""A task's Celery message, made ahead of time so that the store script that records the
task as queued also pushes the message, in the same atomic step: a task is never queued
without its message (a web process dying between the two would leave it waiting forever),
and submitting costs one Redis round trip instead of two plus kombu's producer machinery.

Celery builds the message (headers, body); the envelope around it is the one kombu's Redis
transport writes to its list for the default exchange. tests/integration/
test_broker_message.py checks both against a message kombu itself publishes into a real
redis-server."""

import base64
import uuid
from typing import NamedTuple

from celery import Celery
from kombu.serialization import dumps as serialize
from kombu.utils.json import dumps as to_json


class QueuedMessage(NamedTuple):
    queue: str    # the Redis list the workers pop (kombu's key for priority 0)
    payload: str  # what kombu's Redis transport would LPUSH there


class TaskMessages:
    """task id -> the message that runs `task_name(task_id)` on a worker."""

    def __init__(self, celery: Celery, task_name: str):
        self.celery = celery
        self.task_name = task_name
        self.queue = celery.conf.task_default_queue

    def __call__(self, task_id: str) -> QueuedMessage:
        message = self.celery.amqp.create_task_message(
            task_id, self.task_name, [task_id], {}, ignore_result=True,
            reply_to=self.celery.thread_oid, argsrepr=repr([task_id]), kwargsrepr="{}")
        content_type, encoding, body = serialize(message.body, serializer="json")
        envelope = {
            "body": base64.b64encode(body.encode(encoding)).decode("ascii"),
            "content-encoding": encoding,
            "content-type": content_type,
            "headers": message.headers,
            "properties": {
                **message.properties,
                "delivery_mode": 2,  # persistent
                "delivery_info": {"exchange": "", "routing_key": self.queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
        return QueuedMessage(self.queue, to_json(envelope))
