"""The per-task event log: appended in Redis (for replay), then emitted to the task's room."""

import json
import time
from typing import Callable, Optional

import redis

from . import keys

EVENT_TYPES = ("status", "stdout", "stderr", "token", "log", "tool_call", "tool_result",
               "artifact", "result", "error")
Emit = Callable[[str, tuple], None]  # (room, events): one message for events made together
PAGE = 1000  # events read from the log at a time
# Appends a running task's events only while this attempt still owns it (the fencing token):
# a worker that lost its task (cut off from Redis, and the task taken over) writes nothing.
APPEND_FENCED = """
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1]
   or redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
local seq = redis.call('RPUSH', KEYS[2], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[2], ARGV[2])
return seq
"""


class LostOwnership(RuntimeError):
    """Another attempt owns the task now (or it ended): this one must stop, writing nothing."""


class EventLog:
    def __init__(self, client: redis.Redis, emit: Emit, retention_s: int):
        self.redis = client
        self.emit = emit
        self.retention_s = retention_s
        self._append_fenced = client.register_script(APPEND_FENCED)

    def append_owned(self, task_id: str, attempt: int, events: list[dict]) -> list[dict]:
        """Store (in one round trip) and emit events of a running task, if `attempt` still
        owns it; LostOwnership otherwise."""
        last = self._append_fenced(keys=[keys.record(task_id), keys.events(task_id)],
                                   args=[attempt, self.retention_s,
                                         *[json.dumps(e) for e in events]])
        if not last:
            raise LostOwnership(f"task {task_id}: attempt {attempt} no longer owns it")
        return self.stored_many(events, int(last) - len(events) + 1)

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

    def page(self, task_id: str, seq: int, limit: int = PAGE) -> Optional[list[dict]]:
        """At most `limit` events after `seq`, or None when there is no such task (never
        submitted, or expired): both in one round trip, as a subscribe needs both."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(keys.record(task_id))
        pipe.lrange(keys.events(task_id), seq, seq + limit - 1)
        exists, raw = pipe.execute()
        if not exists:
            return None
        return [dict(json.loads(item), seq=seq + i + 1) for i, item in enumerate(raw)]

    def after(self, task_id: str, seq: int) -> Optional[list[dict]]:
        """Every event after `seq` (read a page at a time), or None when there is no task."""
        events = self.page(task_id, seq)
        while events is not None and len(events) % PAGE == 0 and events:
            more = self.page(task_id, events[-1]["seq"]) or []
            if not more:
                break
            events += more
        return events


def new_event(task_id: str, type_: str, data: dict) -> dict:
    return {"task_id": task_id, "type": type_, "data": data, "ts": time.time()}
