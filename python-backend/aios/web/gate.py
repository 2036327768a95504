"""Exactly-once, in-order delivery of task events to each socket.

Live events reach a task's room through the Redis message queue; a subscriber also gets
a replay from the event log. The gate sits between both and each socket: it buffers live
events while a replay runs, drops what was already delivered, and fills a gap (a live event
lost while Redis was away) from the log."""

import threading
from dataclasses import dataclass, field
from typing import Callable

Fetch = Callable[[str, int], list]  # (task_id, after_seq) -> events from the log


@dataclass
class _Stream:
    last: int
    replaying: bool = True
    pending: dict = field(default_factory=dict)


class SubscriptionGate:
    def __init__(self, fetch: Fetch):
        self.fetch = fetch
        self.lock = threading.RLock()
        self._streams: dict[tuple[str, str], _Stream] = {}

    def begin(self, sid: str, task_id: str, after: int) -> None:
        """From now on, live events for (sid, task) are held until finish()."""
        with self.lock:
            self._streams[(sid, task_id)] = _Stream(last=after)

    def replayed(self, sid: str, task_id: str, events: list) -> list:
        with self.lock:
            stream = self._streams.get((sid, task_id))
            return self._accept(task_id, stream, events) if stream else []

    def finish(self, sid: str, task_id: str) -> list:
        with self.lock:
            stream = self._streams.get((sid, task_id))
            if stream is None:  # closed already: the replay reached the final status
                return []
            stream.replaying = False
            held, stream.pending = list(stream.pending.values()), {}
            return self._accept(task_id, stream, held)

    def live(self, sid: str, task_id: str, events: list) -> list:
        with self.lock:
            stream = self._streams.get((sid, task_id))
            if stream is None:
                return []
            if stream.replaying:
                stream.pending.update((event["seq"], event) for event in events)
                return []
            return self._accept(task_id, stream, events)

    def close(self, sid: str, task_id: str) -> None:
        """The stream ended; a later subscribe begins it again."""
        self._streams.pop((sid, task_id), None)

    def forget(self, sid: str) -> None:
        with self.lock:
            for key in [k for k in self._streams if k[0] == sid]:
                del self._streams[key]

    def _accept(self, task_id: str, stream: _Stream, events: list) -> list:
        out = []
        for event in sorted(events, key=lambda e: e["seq"]):
            if event["seq"] <= stream.last:
                continue
            if event["seq"] > stream.last + 1:
                out += [e for e in self.fetch(task_id, stream.last) if e["seq"] < event["seq"]]
            out.append(event)
            stream.last = event["seq"]
        return out
