"""Requeues tasks whose worker died (no heartbeat), without waiting for the broker's
visibility timeout, which must stay longer than the longest task; and re-drives tasks that
have waited in the queue for long, in case their message was lost."""

import logging
import time
from typing import Callable

from .broker import QueuedMessage
from .events import EventLog
from .store import TaskStore

log = logging.getLogger(__name__)


def requeue_orphans(store: TaskStore, events: EventLog,
                    message_for: Callable[[str], QueuedMessage]) -> int:
    requeued = 0
    for task_id in store.running_ids():
        if store.requeue_if_orphaned(task_id, message_for(task_id)):
            log.warning("task %s lost its worker: requeued", task_id)
            events.append(task_id, "status", {"status": "queued"})
            requeued += 1
    return requeued


def redrive_stale(store: TaskStore, message_for: Callable[[str], QueuedMessage],
                  after_s: float) -> int:
    redriven = 0
    for task_id in store.queued_since(time.time() - after_s):
        if store.redrive(task_id, message_for(task_id)):
            log.warning("task %s queued for over %g s: its message pushed again", task_id,
                        after_s)
            redriven += 1
    return redriven
