"""The per-task event log: appended in Redis (for replay), then emitted to the task's room."""

import json
import time
from typing import Callable, Optional

import redis

from . import keys

EVENT_TYPES = ("status", "stdout", "stderr", "token", "log", "tool_call", "tool_result",
               "result", "error")
Emit = Callable[[str, tuple], None]  # (room, events): one message for events made together


class EventLog:
    def __init__(self, client: redis.Redis, emit: Emit, retention_s: int):
        self.redis = client
        self.emit = emit
        self.retention_s = retention_s

    def append(self, task_id: str, type_: str, data: dict) -> dict:
        """Store then emit; seq is the event's 1-based position in the log."""
        event = new_event(task_id, type_, data)
        key = keys.events(task_id)
        pipe = self.redis.pipeline()
        pipe.rpush(key, json.dumps(event))
        pipe.expire(key, self.retention_s)
        seq, _ = pipe.execute()
        return self.stored(event, seq)

    def stored(self, event: dict, seq: int) -> dict:
        """Emit an event that was stored at `seq` (by append, or by a store script that
        appends atomically with a state change)."""
        return self.stored_many([event], seq)[0]

    def stored_many(self, events: list, first_seq: int) -> list:
        """Emit events of one task stored together from `first_seq` on, in one message:
        a result and the final status cost one publish, not two."""
        for offset, event in enumerate(events):
            event["seq"] = first_seq + offset
        self.emit(keys.room(events[0]["task_id"]), tuple(events))
        return events

    def after(self, task_id: str, seq: int, limit: int = 10_000) -> Optional[list[dict]]:
        """The events after `seq`, or None when there is no such task (never submitted, or
        expired): both in one round trip, as a subscribe needs both."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(keys.record(task_id))
        pipe.lrange(keys.events(task_id), seq, seq + limit - 1)
        exists, raw = pipe.execute()
        if not exists:
            return None
        return [dict(json.loads(item), seq=seq + i + 1) for i, item in enumerate(raw)]


def new_event(task_id: str, type_: str, data: dict) -> dict:
    return {"task_id": task_id, "type": type_, "data": data, "ts": time.time()}
