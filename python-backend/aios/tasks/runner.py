"""Runs one task in a worker: claim, heartbeat, watch for cancel, execute, record."""

import logging
import socket
import threading
from typing import Callable, Optional

from .events import EventLog
from .sandbox_client import SandboxClient, SandboxError
from .store import TaskStore

log = logging.getLogger(__name__)


class Cancelled(Exception):
    pass


class TaskFailed(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class RunContext:
    """What a kind's implementation may use: emit events, check for cancel, stop on cancel."""

    def __init__(self, task_id: str, events: EventLog, cancelled: threading.Event):
        self.task_id = task_id
        self.events = events
        self.cancelled = cancelled
        self._abort: Optional[Callable[[], None]] = None

    def emit(self, type_: str, data: dict) -> None:
        self.events.append(self.task_id, type_, data)

    def on_cancel(self, abort: Callable[[], None]) -> None:
        """Call abort (from the watcher thread) when the task is cancelled."""
        self._abort = abort
        if self.cancelled.is_set():
            abort()

    def abort(self) -> None:
        self.cancelled.set()
        if self._abort:
            self._abort()


def run_echo(ctx: RunContext, task_input: dict, sandbox: SandboxClient) -> dict:
    return {"text": task_input["text"]}


def run_code(ctx: RunContext, task_input: dict, sandbox: SandboxClient) -> dict:
    def output(stream: str, text: str) -> None:
        ctx.emit(stream, {"text": text})
    try:
        return sandbox.run(task_input, output, owner=f"task:{ctx.task_id}",
                           register_close=ctx.on_cancel)
    except SandboxError as exc:
        if ctx.cancelled.is_set():
            raise Cancelled() from exc
        raise TaskFailed(exc.code, str(exc)) from exc


RUNNERS = {"echo": run_echo, "code": run_code}


class TaskRunner:
    def __init__(self, store: TaskStore, events: EventLog, sandbox: SandboxClient,
                 heartbeat_interval_s: float):
        self.store = store
        self.events = events
        self.sandbox = sandbox
        self.heartbeat_interval_s = heartbeat_interval_s
        self.worker = f"{socket.gethostname()}:{threading.get_native_id()}"

    def execute(self, task_id: str) -> str:
        """Runs the task unless another delivery already did or does; returns what happened."""
        status, attempt = self.store.claim(task_id, self.worker)
        if status != "claimed":
            log.info("task %s not run: %s", task_id, status)
            return status
        kind, task_input = self.store.input_of(task_id)
        ctx = RunContext(task_id, self.events, threading.Event())
        if attempt > 1:
            ctx.emit("log", {"text": f"restarted (attempt {attempt}) after a worker was lost\n"})
        ctx.emit("status", {"status": "running"})
        stop = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(ctx, stop), daemon=True)
        watcher.start()
        try:
            result = RUNNERS[kind](ctx, task_input, self.sandbox)
            if ctx.cancelled.is_set():
                raise Cancelled()
            return self._end(ctx, attempt, "succeeded", "result", result)
        except Cancelled:
            return self._end(ctx, attempt, "cancelled", None, None)
        except TaskFailed as exc:
            return self._end(ctx, attempt, "failed", "error", {"code": exc.code,
                                                               "message": str(exc)})
        except Exception as exc:  # noqa: BLE001 - any failure is recorded, never lost
            log.exception("task %s failed", task_id)
            return self._end(ctx, attempt, "failed", "error",
                             {"code": type(exc).__name__, "message": str(exc)[:2000]})
        finally:
            stop.set()
            watcher.join()

    def _end(self, ctx: RunContext, attempt: int, status: str, field, value) -> str:
        if field:
            ctx.emit(field, value)
        if self.store.finish(ctx.task_id, attempt, status, field or "error", value):
            ctx.emit("status", {"status": status})
        return status

    def _watch(self, ctx: RunContext, stop: threading.Event) -> None:
        """Heartbeat for the watchdog, and the cancel flag, until the run ends."""
        beats = 0
        while not stop.wait(0.1):
            beats += 1
            if beats * 0.1 >= self.heartbeat_interval_s:
                beats = 0
                self.store.heartbeat(ctx.task_id, self.worker)
            if not ctx.cancelled.is_set() and self.store.cancel_requested(ctx.task_id):
                ctx.abort()
