"""Submitting, reading and cancelling tasks: what REST and Socket.IO handlers call."""

import json
import re
import uuid
from dataclasses import dataclass
from typing import Callable, Optional

import redis

from .broker import QueuedMessage
from .events import PAGE, EventLog, new_event
from .errors import BadTaskInput
from .kind import Kinds, validate_input
from .pressure import RedisPressure
from .store import FINAL, STATUSES, TaskStore

TASK_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class TaskNotFound(LookupError):
    pass


@dataclass
class Submitted:
    task: dict
    created: bool  # False: the id existed, nothing was enqueued again


class TaskService:
    def __init__(self, store: TaskStore, log: EventLog, kinds: Kinds,
                 message_for: Callable[[str], QueuedMessage], revoke: Callable[[str], None],
                 max_input_bytes: int, validation_context: Optional[dict] = None,
                 pressure: Optional[RedisPressure] = None):
        self.pressure = pressure  # refuses new tasks while Redis is nearly full
        self.store = store
        self.log = log
        self.kinds = kinds  # what may be submitted, and how each input is validated
        self.message_for = message_for
        self.revoke = revoke
        self.max_input_bytes = max_input_bytes
        self.validation_context = validation_context  # e.g. {"files": ...} for attachments

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def submit(self, kind, task_input, task_id: Optional[str] = None) -> Submitted:
        task_id = task_id or self.new_id()
        if not isinstance(task_id, str) or not TASK_ID.match(task_id):
            raise BadTaskInput("task_id must be 8-64 letters, digits, '-' or '_'")
        if len(json.dumps(task_input)) > self.max_input_bytes:
            raise BadTaskInput(f"input is larger than {self.max_input_bytes} bytes", status=413)
        clean = validate_input(self.kinds, kind, task_input, self.validation_context)
        if self.pressure:
            self.pressure.check()  # StorageFull
        event = new_event(task_id, "status", {"status": "queued"})
        # Recorded, logged and queued in one step: the task runs once, never zero times.
        try:
            seq = self.store.create(task_id, kind, clean, event, self.message_for(task_id))
        except redis.exceptions.OutOfMemoryError:
            if self.pressure is None:
                raise
            raise self.pressure.refused() from None
        if not seq:
            return Submitted(self.store.get(task_id), created=False)
        # The queued event is not emitted live: no socket can be in the task's room before it
        # exists, except a socket submitting it, and that one replays the log after this.
        return Submitted({"task_id": task_id, "kind": kind, "status": "queued"}, created=True)

    def get(self, task_id: str) -> dict:
        task = self.store.get(task_id) if TASK_ID.match(task_id or "") else None
        if task is None:
            raise TaskNotFound(f"no task {task_id!r}")
        return task

    def recent(self, status: Optional[str], limit: int) -> list[dict]:
        if status is not None and status not in STATUSES:
            raise BadTaskInput(f"status must be one of {', '.join(STATUSES)}")
        if not 1 <= limit <= 500:
            raise BadTaskInput("limit must be between 1 and 500")
        return self.store.recent(status, limit)

    def events(self, task_id: str, after: int, limit: int = PAGE) -> list[dict]:
        """At most `limit` of the task's logged events after `after`; TaskNotFound if there
        is no such task. A page shorter than `limit` is the end of the log for now."""
        if after < 0:
            raise BadTaskInput("after must be >= 0")
        events = self.log.page(task_id, after, limit) if TASK_ID.match(task_id or "") else None
        if events is None:
            raise TaskNotFound(f"no task {task_id!r}")
        return events

    def cancel(self, task_id: str) -> dict:
        """Queued: cancelled at once. Running: the worker stops it. Final: unchanged."""
        task = self.get(task_id)
        if task["status"] in FINAL:
            return task
        event = new_event(task_id, "status", {"status": "cancelled"})
        seq = self.store.cancel_if_queued(task_id, event)
        if seq:
            self.revoke(task_id)
            self.log.stored(event, seq)
        else:
            self.store.request_cancel(task_id)
        return self.store.get(task_id)
