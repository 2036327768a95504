"""Task records in Redis, with the state changes that must be atomic as Lua scripts."""

import json
import time
from dataclasses import dataclass, field
from typing import Optional

import redis

from . import keys
from .broker import QueuedMessage

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL = ("succeeded", "failed", "cancelled")

# Each script that changes the status also appends the matching events to the log, so
# that the record and its log never disagree, in one round trip; a script that makes a task
# queued also pushes its Celery message (see broker.py).
CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[1], string.sub(KEYS[1], string.len('aios:task:') + 1))
local seq = redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('EXPIRE', KEYS[3], ARGV[2])
redis.call('LPUSH', KEYS[4], ARGV[4])
redis.call('ZADD', KEYS[5], ARGV[1], string.sub(KEYS[1], string.len('aios:task:') + 1))
return seq
"""
# queued -> running; a running task whose heartbeat stopped may be taken over too.
CLAIM = """
local status = redis.call('HGET', KEYS[1], 'status')
redis.call('ZREM', KEYS[5], ARGV[3])
if not status then return {'missing', 0} end
if status == 'running' and redis.call('EXISTS', KEYS[3]) == 1 then return {'running', 0} end
if status ~= 'queued' and status ~= 'running' then return {status, 0} end
local spent = tonumber(redis.call('HGET', KEYS[1], 'attempt'))
  - tonumber(redis.call('HGET', KEYS[1], 'released') or '0')
if spent >= tonumber(ARGV[7]) then
  -- lost its worker too often (a crash or the hard time limit each time): give up
  redis.call('HSET', KEYS[1], 'status', 'failed', 'updated_at', ARGV[1], 'error', ARGV[8])
  redis.call('SREM', KEYS[2], ARGV[3])
  local seq = redis.call('RPUSH', KEYS[4], ARGV[9], ARGV[10])
  return {'exhausted', 0, '', '', seq - 1}
end
local attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1)
redis.call('HSET', KEYS[1], 'status', 'running', 'updated_at', ARGV[1], 'worker', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[4])
local fields = redis.call('HMGET', KEYS[1], 'kind', 'input')
local seq = redis.call('RPUSH', KEYS[4], ARGV[5])
redis.call('EXPIRE', KEYS[4], ARGV[6])
return {'claimed', attempt, fields[1], fields[2], seq}
"""
FINISH = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'updated_at', ARGV[3], ARGV[4], ARGV[5])
redis.call('SREM', KEYS[2], ARGV[6])
redis.call('DEL', KEYS[3])
local seq = redis.call('RPUSH', KEYS[4], unpack(ARGV, 8))
redis.call('EXPIRE', KEYS[4], ARGV[7])
redis.call('EXPIRE', KEYS[1], ARGV[7])  -- kept for the retention from its end on
return seq
"""
CANCEL_QUEUED = """
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then return 0 end
redis.call('ZREM', KEYS[3], ARGV[4])
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'updated_at', ARGV[1])
local seq = redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return seq
"""
# Refreshes the heartbeat only while this attempt owns the task (the fencing token), and
# keeps the record and its log alive however long the task runs.
HEARTBEAT = """
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1]
   or redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[3], ARGV[4])
return 1
"""
REQUEUE_ORPHAN = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then
  redis.call('SREM', KEYS[2], ARGV[2]); return 0
end
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'status', 'queued', 'updated_at', ARGV[1])
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('LPUSH', KEYS[4], ARGV[3])
redis.call('ZADD', KEYS[5], ARGV[1], ARGV[2])
return 1
"""
# A running task handed back by a worker that is stopping (SIGTERM and its grace time over):
# queued again with its message, and the attempt not counted against it.
RELEASE = """
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1]
   or redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'queued', 'updated_at', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'released', 1)
redis.call('DEL', KEYS[3])
redis.call('SREM', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[6], ARGV[2], ARGV[3])
redis.call('LPUSH', KEYS[5], ARGV[4])
return redis.call('RPUSH', KEYS[4], unpack(ARGV, 5))
"""
# A task queued for long, its message perhaps gone (a claim that failed was acknowledged,
# the queue was lost): its message again (a duplicate is harmless: a claim runs a task once),
# and its record and log kept alive while it waits.
REDRIVE = """
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then
  redis.call('ZREM', KEYS[2], ARGV[2]); return 0
end
redis.call('LPUSH', KEYS[3], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[4], ARGV[4])
return 1
"""


@dataclass
class Claim:
    outcome: str  # "claimed", or the status that prevented it ("running", "succeeded", ...)
    attempt: int = 0
    kind: str = ""
    input: dict = field(default_factory=dict)
    seq: int = 0  # of the first logged event
    events: list = field(default_factory=list)  # logged when exhausted


class TaskStore:
    def __init__(self, client: redis.Redis, retention_s: int, heartbeat_ttl_s: float):
        self.redis = client
        self.retention_s = retention_s
        self.heartbeat_ttl_ms = int(heartbeat_ttl_s * 1000)
        self._create = client.register_script(CREATE)
        self._claim = client.register_script(CLAIM)
        self._finish = client.register_script(FINISH)
        self._cancel_queued = client.register_script(CANCEL_QUEUED)
        self._requeue = client.register_script(REQUEUE_ORPHAN)
        self._heartbeat = client.register_script(HEARTBEAT)
        self._redrive = client.register_script(REDRIVE)
        self._release = client.register_script(RELEASE)

    def create(self, task_id: str, kind: str, task_input: dict, event: dict,
               message: QueuedMessage) -> int:
        """Creates the record, logs `event` and queues `message`; returns the event's seq,
        or 0 when the id exists already (a task id never runs twice)."""
        now = time.time()
        fields = {"task_id": task_id, "kind": kind, "input": json.dumps(task_input),
                  "status": "queued", "created_at": now, "updated_at": now, "attempt": 0}
        flat = [str(x) for pair in fields.items() for x in pair]
        return int(self._create(
            keys=[keys.record(task_id), keys.RECENT, keys.events(task_id), message.queue,
                  keys.QUEUED],
            args=[now, self.retention_s, json.dumps(event), message.payload, *flat]))

    def get(self, task_id: str) -> Optional[dict]:
        raw = self.redis.hgetall(keys.record(task_id))
        return public_view(raw) if raw else None

    def recent(self, status: Optional[str], limit: int) -> list[dict]:
        cutoff = time.time() - self.retention_s
        self.redis.zremrangebyscore(keys.RECENT, "-inf", cutoff)
        ids = self.redis.zrevrange(keys.RECENT, 0, -1 if status else limit - 1)
        tasks = []
        for task_id in ids:
            task = self.get(task_id)
            if task and (status is None or task["status"] == status):
                tasks.append(task)
                if len(tasks) >= limit:
                    break
        return tasks

    def claim(self, task_id: str, worker: str, event: dict, max_attempts: int) -> Claim:
        """queued (or orphaned) -> running, logging `event` (the running status). A task
        that already had max_attempts is failed instead ("exhausted", with its two events)."""
        error = {"code": "too_many_attempts",
                 "message": f"the task lost its worker {max_attempts} times; not retried"}
        failed = [{**event, "type": "error", "data": error},
                  {**event, "data": {"status": "failed"}}]
        reply = self._claim(
            keys=[keys.record(task_id), keys.RUNNING, keys.heartbeat(task_id),
                  keys.events(task_id), keys.QUEUED],
            args=[time.time(), worker, task_id, self.heartbeat_ttl_ms, json.dumps(event),
                  self.retention_s, max_attempts, json.dumps(error),
                  *[json.dumps(e) for e in failed]])
        if reply[0] == "exhausted":
            return Claim("exhausted", seq=int(reply[4]), events=failed)
        if reply[0] != "claimed":
            return Claim(reply[0])
        return Claim("claimed", int(reply[1]), reply[2], json.loads(reply[3]), int(reply[4]))

    def heartbeat(self, task_id: str, attempt: int, worker: str) -> bool:
        """Keeps the task's heartbeat alive; False when `attempt` no longer owns the task."""
        return bool(self._heartbeat(
            keys=[keys.record(task_id), keys.heartbeat(task_id), keys.events(task_id)],
            args=[attempt, worker, self.heartbeat_ttl_ms, self.retention_s]))

    def finish(self, task_id: str, attempt: int, status: str, field: str, value,
               events: list[dict]) -> int:
        """Records the end and logs `events` if this attempt still owns the task; returns
        the seq of the first event, or 0."""
        last = self._finish(
            keys=[keys.record(task_id), keys.RUNNING, keys.heartbeat(task_id),
                  keys.events(task_id)],
            args=[attempt, status, time.time(), field, json.dumps(value), task_id,
                  self.retention_s, *[json.dumps(e) for e in events]])
        return int(last) - len(events) + 1 if last else 0

    def cancel_if_queued(self, task_id: str, event: dict) -> int:
        """queued -> cancelled, logging `event`; returns its seq, or 0."""
        return int(self._cancel_queued(
            keys=[keys.record(task_id), keys.events(task_id), keys.QUEUED],
            args=[time.time(), self.retention_s, json.dumps(event), task_id]))

    def request_cancel(self, task_id: str) -> None:
        self.redis.set(keys.cancel(task_id), 1, ex=self.retention_s)

    def cancel_requested(self, task_id: str) -> bool:
        return bool(self.redis.exists(keys.cancel(task_id)))

    def running_ids(self) -> list[str]:
        return list(self.redis.smembers(keys.RUNNING))

    def requeue_if_orphaned(self, task_id: str, message: QueuedMessage) -> bool:
        """running without a heartbeat (its worker died) -> queued, with `message` queued."""
        return bool(self._requeue(
            keys=[keys.record(task_id), keys.RUNNING, keys.heartbeat(task_id), message.queue,
                  keys.QUEUED],
            args=[time.time(), task_id, message.payload]))

    def release(self, task_id: str, attempt: int, message: QueuedMessage,
                events: list[dict]) -> int:
        """running -> queued with its message pushed, `attempt` not counted; logs `events`.
        Returns the seq of the first event, or 0 if the attempt no longer owns the task."""
        last = self._release(
            keys=[keys.record(task_id), keys.RUNNING, keys.heartbeat(task_id),
                  keys.events(task_id), message.queue, keys.QUEUED],
            args=[attempt, time.time(), task_id, message.payload,
                  *[json.dumps(e) for e in events]])
        return int(last) - len(events) + 1 if last else 0

    def request_release(self, task_id: str, ttl_s: int = 120) -> None:
        self.redis.set(keys.release(task_id), 1, ex=ttl_s)

    def release_requested(self, task_id: str) -> bool:
        return bool(self.redis.exists(keys.release(task_id)))

    def queued_since(self, before: float, limit: int = 100) -> list[str]:
        """Tasks whose message was pushed before `before` and that are still queued."""
        return self.redis.zrangebyscore(keys.QUEUED, "-inf", before, start=0, num=limit)

    def redrive(self, task_id: str, message: QueuedMessage) -> bool:
        """A queued task's message pushed again, its record and log kept alive."""
        return bool(self._redrive(
            keys=[keys.record(task_id), keys.QUEUED, message.queue, keys.events(task_id)],
            args=[time.time(), task_id, message.payload, self.retention_s]))


def public_view(raw: dict) -> dict:
    """The record as the API shows it."""
    def loaded(name):
        return json.loads(raw[name]) if raw.get(name) else None
    return {"task_id": raw["task_id"], "kind": raw["kind"], "status": raw["status"],
            "result": loaded("result"), "error": loaded("error"),
            "created_at": float(raw["created_at"]), "updated_at": float(raw["updated_at"]),
            "attempt": int(raw.get("attempt", 0))}
