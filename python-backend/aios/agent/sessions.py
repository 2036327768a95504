"""Agent sessions (conversations), in Redis with a TTL: the history, the ids of the
conversation's sandbox and browser, a little for listing them; one run at a time each."""

import json
import time
from contextlib import contextmanager
from typing import Iterator, Optional

import redis

PREFIX = "aios:agent:session:"
INDEX = "aios:agent:sessions"  # session id -> last saved (epoch s)
TITLE_CHARS = 80
KEPT = ("sandbox", "browser")  # what a conversation keeps between its runs
# Deletes the lock only if this run still holds it (it may have expired and been taken)
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Takes the lock if it is free or held by an earlier attempt of the same task (which lost
# the task: its worker died or was cut off); holders are "<task id>:<attempt>".
ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder and string.sub(holder, 1, string.len(ARGV[2]) + 1) ~= ARGV[2] .. ':' then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
"""


class SessionBusy(RuntimeError):
    pass


class AgentSessions:
    def __init__(self, client: redis.Redis, ttl_s: int, max_bytes: int = 2 << 20):
        self.redis = client
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self._release = client.register_script(RELEASE)
        self._acquire = client.register_script(ACQUIRE)
        self._forget = client.register_script(RELEASE)  # the same compare-and-delete

    def load(self, session_id: str) -> list[dict]:
        raw = self.redis.get(PREFIX + session_id)
        return json.loads(raw) if raw else []

    def save(self, session_id: str, messages: list[dict]) -> None:
        """Keeps the newest turns that fit in max_bytes (a turn starts at a user message, so
        a tool result is never kept without the call it answers)."""
        title = _title(messages)
        data = json.dumps(messages)
        while len(data) > self.max_bytes:
            starts = [i for i, m in enumerate(messages) if m["role"] == "user"]
            if len(starts) < 2:
                break
            messages = messages[starts[1]:]
            data = json.dumps(messages)
        now = time.time()
        meta = PREFIX + session_id + ":meta"
        with self.redis.pipeline() as pipe:
            pipe.set(PREFIX + session_id, data, ex=self.ttl_s)
            pipe.hsetnx(meta, "title", title)
            pipe.hset(meta, "updated_at", now)
            pipe.hincrby(meta, "turns", 1)  # a turn: one run of the conversation
            pipe.expire(meta, self.ttl_s)
            for kind in KEPT:
                pipe.expire(PREFIX + session_id + ":" + kind, self.ttl_s)
            pipe.zadd(INDEX, {session_id: now})
            pipe.zremrangebyscore(INDEX, 0, now - self.ttl_s)
            pipe.execute()

    def sandbox(self, session_id: str) -> Optional[str]:
        """The conversation's sandbox, as last stored (it may have gone since)."""
        return self.kept(session_id, "sandbox")

    def keep_sandbox(self, session_id: str, sandbox_id: str) -> None:
        self.keep(session_id, "sandbox", sandbox_id)

    def kept(self, session_id: str, kind: str) -> Optional[str]:
        """The id of the conversation's sandbox or browser (KEPT), as last stored."""
        return self.redis.get(PREFIX + session_id + ":" + kind)

    def keep(self, session_id: str, kind: str, resource_id: str) -> None:
        self.redis.set(PREFIX + session_id + ":" + kind, resource_id, ex=self.ttl_s)

    def forget(self, session_id: str, kind: str, resource_id: str) -> None:
        """Drops the kept id if it is still this one (its host is gone: the next run makes
        a new one elsewhere)."""
        self._forget(keys=[PREFIX + session_id + ":" + kind], args=[resource_id])

    def listing(self, limit: int = 100) -> list[dict]:
        """The newest sessions first: {session_id, title, turns, updated_at, sandbox_id,
        busy}."""
        ids = self.redis.zrevrange(INDEX, 0, limit - 1)
        with self.redis.pipeline() as pipe:
            for session_id in ids:
                key = PREFIX + session_id
                pipe.exists(key)
                pipe.hgetall(key + ":meta")
                pipe.get(key + ":sandbox")
                pipe.exists(key + ":lock")
            found = pipe.execute()
        sessions = []
        for i, session_id in enumerate(ids):
            exists, meta, sandbox_id, busy = found[4 * i:4 * i + 4]
            if not exists:
                self.redis.zrem(INDEX, session_id)
                continue
            sessions.append({"session_id": session_id, "title": meta.get("title", ""),
                             "turns": int(meta.get("turns", 0)),
                             "updated_at": float(meta.get("updated_at", 0)),
                             "sandbox_id": sandbox_id, "busy": bool(busy)})
        return sessions

    def delete(self, session_id: str) -> dict[str, str]:
        """Forgets a session (refused while it runs); returns what it kept, to destroy
        ({"sandbox": id, "browser": id}, either absent). KeyError when there is no such
        session."""
        key = PREFIX + session_id
        if self.redis.exists(key + ":lock"):
            raise SessionBusy(f"session {session_id!r} is busy with a run; cancel it first")
        kept = {kind: self.kept(session_id, kind) for kind in KEPT}
        with self.redis.pipeline() as pipe:
            pipe.delete(key, key + ":meta", *(key + ":" + kind for kind in KEPT))
            pipe.zrem(INDEX, session_id)
            deleted = pipe.execute()[0]
        kept = {kind: resource for kind, resource in kept.items() if resource}
        if not deleted and not kept:
            raise KeyError(session_id)
        return kept

    @contextmanager
    def running(self, session_id: str, task_id: str, attempt: int,
                max_run_s: float) -> Iterator[None]:
        """Holds the session for one run; a second run at the same time is refused (a later
        attempt of the same task takes the place of the attempt it replaces)."""
        lock = PREFIX + session_id + ":lock"
        run_id = f"{task_id}:{attempt}"
        if not self._acquire(keys=[lock], args=[run_id, task_id, int(max_run_s) + 60]):
            raise SessionBusy(f"session {session_id!r} is busy with another run")
        try:
            yield
        finally:
            self._release(keys=[lock], args=[run_id])


def _title(messages: list[dict]) -> str:
    """The conversation's first user message, shortened: what a sidebar lists."""
    first = next((m["content"] for m in messages if m["role"] == "user"), "")
    if not isinstance(first, str):  # the user's words are the first part; notes follow
        first = next((p.get("text", "") for p in first if p.get("type") == "text"), "")
    text = " ".join(first.split())
    return text if len(text) <= TITLE_CHARS else text[:TITLE_CHARS - 1] + "…"
