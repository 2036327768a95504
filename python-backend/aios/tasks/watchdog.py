"""Requeues tasks whose worker died (no heartbeat), without waiting for the broker's
visibility timeout, which must stay longer than the longest task."""

import logging
import threading
from typing import Callable

from .events import EventLog
from .store import TaskStore

log = logging.getLogger(__name__)


def requeue_orphans(store: TaskStore, events: EventLog, enqueue: Callable[[str], None]) -> int:
    requeued = 0
    for task_id in store.running_ids():
        if store.requeue_if_orphaned(task_id):
            log.warning("task %s lost its worker: requeued", task_id)
            events.append(task_id, "status", {"status": "queued"})
            enqueue(task_id)
            requeued += 1
    return requeued


def start_watchdog(interval_s: float, sweep: Callable[[], int]) -> threading.Event:
    stop = threading.Event()

    def loop():
        while not stop.wait(interval_s):
            try:
                sweep()
            except Exception:  # noqa: BLE001 - Redis may be down for a while; keep trying
                log.warning("watchdog sweep failed", exc_info=True)

    threading.Thread(target=loop, name="aios-watchdog", daemon=True).start()
    return stop
