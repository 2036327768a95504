"""A task's streamed output (stdout, stderr, a model's tokens), joined so that a chatty
program or a fast model makes at most `rate` events a second. Consecutive chunks of one
stream become one event; nothing is lost or reordered, and `flush` sends what waits before
any other event of the task. A sender thread emits, so that reading a stream never waits on
Redis (with it inline, a 2,000-token answer took a fifth longer through the pipeline)."""

import threading
import time
from typing import Callable, Optional

Chunk = tuple[str, str]  # (event type, text)
EmitMany = Callable[[list[tuple[str, dict]]], None]  # [(type, data)], in order


def joined(chunks: list[Chunk]) -> list[tuple[str, dict]]:
    """Adjacent chunks of one type as one event each, in order."""
    events: list[tuple[str, dict]] = []
    for kind, text in chunks:
        if events and events[-1][0] == kind:
            events[-1][1]["text"] += text
        else:
            events.append((kind, {"text": text}))
    return events


class OutputCoalescer:
    def __init__(self, emit_many: EmitMany, rate: float = 30.0):
        self.emit_many = emit_many
        self.interval = 1.0 / rate
        self._buffer: list[Chunk] = []
        self._closed = False
        self._failure: Optional[BaseException] = None
        self._wake = threading.Condition(threading.Lock())
        self._sending = threading.Lock()  # taking a batch and emitting it: one at a time
        self._sender: Optional[threading.Thread] = None  # started by the first output

    def add(self, kind: str, text: str) -> None:
        with self._wake:
            if self._failure:
                raise self._failure
            if self._sender is None:
                self._sender = threading.Thread(target=self._send, daemon=True,
                                                name="aios-output-sender")
                self._sender.start()
            self._buffer.append((kind, text))
            if len(self._buffer) == 1:
                self._wake.notify()

    def flush(self, then: Optional[list[tuple[str, dict]]] = None) -> None:
        """Sends what waits, now, in this thread, followed by the events `then` (in the same
        emit); raises what made an emit fail."""
        with self._sending:
            self._emit(joined(self._take()) + (then or []))
        if self._failure:
            raise self._failure

    def close(self) -> None:
        """Sends what is left and stops the sender; raises what made an emit fail."""
        with self._wake:
            self._closed = True
            self._wake.notify()
            sender = self._sender
        if sender is not None:
            sender.join()
        self.flush()

    def _take(self) -> list[Chunk]:
        with self._wake:
            taken, self._buffer = self._buffer, []
            return taken

    def _emit(self, events: list[tuple[str, dict]]) -> None:
        if not events or self._failure:
            return
        try:
            self.emit_many(events)
        except Exception as exc:  # noqa: BLE001 - handed to the reader, which ends the task
            with self._wake:
                self._failure, self._buffer = exc, []

    def _send(self) -> None:
        last = -self.interval
        while True:
            with self._wake:
                while not self._buffer and not self._closed:
                    self._wake.wait()
                if self._closed or self._failure:
                    return  # close() sends the rest itself
                early = self.interval - (time.monotonic() - last)
                if early > 0:
                    self._wake.wait(early)  # gather more until the interval is over
            with self._sending:
                self._emit(joined(self._take()))
            last = time.monotonic()
