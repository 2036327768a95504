"""Pending approvals in Redis, used by both sides: the worker opens a question and waits
for its answer (BLPOP on the call's own list: no spinning), the web answers it. A question
is one record per (task, call_id) with a TTL; every state change is one Lua script, so an
answer and a timeout cannot both win."""

import json
import time
from dataclasses import dataclass
from typing import Optional

import redis

from ..tasks.keys import PREFIX

SLICE_S = 5  # one BLPOP at most this long: under the Redis client's socket_timeout (10 s)
KEEP_S = 300  # a resolved question is remembered this long (a late answer gets 409)
WAKE = "wake"  # what a cancel pushes to end a wait at once

# ARGV: status, note, answer (JSON), ttl. 0: no such question; -1: already resolved.
RESOLVE = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
if status ~= 'pending' then return -1 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'note', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('SREM', KEYS[3], KEYS[4])
if ARGV[3] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
return 1
"""


def record_key(task_id: str, call_id: str) -> str:
    return f"{PREFIX}:task:{task_id}:approval:{call_id}"


def answers_key(task_id: str, call_id: str) -> str:
    return f"{PREFIX}:task:{task_id}:approval:{call_id}:answer"


def pending_key(task_id: str) -> str:
    return f"{PREFIX}:task:{task_id}:approvals"


class UnknownApproval(LookupError):
    """No such question (never asked, or expired): 404."""


class AlreadyResolved(Exception):
    """The question was answered, timed out or was cancelled already: 409."""


@dataclass(frozen=True)
class Answer:
    approved: bool
    by: str  # user, timeout or cancel
    note: Optional[str] = None
    timeout_s: float = 0  # how long it was waited for


class Approvals:
    def __init__(self, client: redis.Redis):
        self.redis = client
        self._resolve = client.register_script(RESOLVE)

    def open(self, task_id: str, call_id: str, question: dict, timeout_s: float) -> None:
        """A pending question, kept a little longer than its wait."""
        ttl = int(timeout_s) + KEEP_S
        record = record_key(task_id, call_id)
        pipe = self.redis.pipeline()
        pipe.delete(record, answers_key(task_id, call_id))  # a re-run may reuse the call id
        pipe.hset(record, mapping={"status": "pending", "question": json.dumps(question),
                                   "expires_at": time.time() + timeout_s})
        pipe.expire(record, ttl)
        pipe.sadd(pending_key(task_id), call_id)
        pipe.expire(pending_key(task_id), ttl)
        pipe.execute()

    def answer(self, task_id: str, call_id: str, approved: bool,
               note: Optional[str] = None) -> None:
        """The user's answer; UnknownApproval or AlreadyResolved when it cannot count."""
        answer = json.dumps({"approved": bool(approved), "note": note})
        self._close(task_id, call_id, "approved" if approved else "denied", note, answer)

    def close(self, task_id: str, call_id: str, status: str) -> bool:
        """Ends a question the user did not answer (timeout, cancel); False when an answer
        came first (it is then in the list: take it with `take`)."""
        try:
            self._close(task_id, call_id, status, None, "")
        except (UnknownApproval, AlreadyResolved):
            return False
        return True

    def _close(self, task_id, call_id, status, note, answer) -> None:
        done = self._resolve(keys=[record_key(task_id, call_id), answers_key(task_id, call_id),
                                   pending_key(task_id), call_id],
                             args=[status, note or "", answer, KEEP_S])
        if done == 0:
            raise UnknownApproval(f"task {task_id} has no approval request {call_id!r} "
                                  "(never asked, or expired)")
        if done == -1:
            raise AlreadyResolved(f"approval request {call_id!r} of task {task_id} was "
                                  "already answered, timed out or cancelled")

    def wake(self, task_id: str, call_id: str) -> None:
        """Ends a wait at once (a cancel): the waiter then looks at why."""
        pipe = self.redis.pipeline()
        pipe.rpush(answers_key(task_id, call_id), WAKE)
        pipe.expire(answers_key(task_id, call_id), KEEP_S)
        pipe.execute()

    def next_answer(self, task_id: str, call_id: str, seconds: float) -> Optional[dict]:
        """The answer, WAKE ({}), or None after `seconds` (BLPOP, in slices)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            got = self.redis.blpop([answers_key(task_id, call_id)], timeout=max(
                0.01, min(SLICE_S, left)))
            if got:
                return {} if got[1] == WAKE else json.loads(got[1])
        return None

    def take(self, task_id: str, call_id: str) -> Optional[dict]:
        """An answer already pushed (after `close` lost the race), without waiting."""
        for raw in self.redis.lrange(answers_key(task_id, call_id), 0, -1):
            if raw != WAKE:
                return json.loads(raw)
        return None

    def pending(self, task_id: str) -> list[dict]:
        """The task's open questions: {call_id, tool, arguments, reason, timeout_s,
        expires_at}."""
        found = []
        for call_id in sorted(self.redis.smembers(pending_key(task_id))):
            record = self.redis.hgetall(record_key(task_id, call_id))
            if record.get("status") == "pending":
                found.append({"call_id": call_id, **json.loads(record["question"]),
                              "expires_at": float(record["expires_at"])})
        return found
