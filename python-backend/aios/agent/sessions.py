"""Conversation history of agent sessions, in Redis with a TTL; one run at a time each."""

import json
from contextlib import contextmanager
from typing import Iterator

import redis

PREFIX = "aios:agent:session:"
# Deletes the lock only if this run still holds it (it may have expired and been taken)
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SessionBusy(RuntimeError):
    pass


class AgentSessions:
    def __init__(self, client: redis.Redis, ttl_s: int, max_bytes: int = 2 << 20):
        self.redis = client
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self._release = client.register_script(RELEASE)

    def load(self, session_id: str) -> list[dict]:
        raw = self.redis.get(PREFIX + session_id)
        return json.loads(raw) if raw else []

    def save(self, session_id: str, messages: list[dict]) -> None:
        """Keeps the newest turns that fit in max_bytes (a turn starts at a user message, so
        a tool result is never kept without the call it answers)."""
        data = json.dumps(messages)
        while len(data) > self.max_bytes:
            starts = [i for i, m in enumerate(messages) if m["role"] == "user"]
            if len(starts) < 2:
                break
            messages = messages[starts[1]:]
            data = json.dumps(messages)
        self.redis.set(PREFIX + session_id, data, ex=self.ttl_s)

    @contextmanager
    def running(self, session_id: str, run_id: str, max_run_s: float) -> Iterator[None]:
        """Holds the session for one run; a second run at the same time is refused."""
        lock = PREFIX + session_id + ":lock"
        if not self.redis.set(lock, run_id, nx=True, ex=int(max_run_s) + 60):
            raise SessionBusy(f"session {session_id!r} is busy with another run")
        try:
            yield
        finally:
            self._release(keys=[lock], args=[run_id])
