"""One patch of kombu's Redis transport (checked with kombu 5.7.0), so that a worker
outlives a full Redis.

With `maxmemory` and `noeviction` (the broker must never drop keys), Redis refuses the
writes of kombu's ack emulation: `QoS.append` on each delivery (ZADD + HSET) and `QoS.ack`
(ZREM + HDEL in a MULTI, which Redis 7 refuses as a whole when full). kombu lets the error
escape the worker's event loop, and Celery exits ("Unrecoverable error: OutOfMemoryError"),
taking its running tasks with it. Both bookkeeping writes can be skipped here, because a
claim runs a task once:
- an ack not written leaves the message in the unacked set; kombu restores it after the
  visibility timeout, and its redelivery finds the task ended and does nothing;
- a delivery not recorded as unacked is still run; should the worker then die, the task's
  record is still queued or running, and the watchdog re-drives or requeues it.
The in-memory bookkeeping (the virtual QoS) is done either way, so prefetch counts stay
right. Connection errors are left alone: Celery reconnects on those by itself."""

import logging

import redis

log = logging.getLogger(__name__)
REFUSED = (redis.exceptions.OutOfMemoryError, redis.exceptions.ExecAbortError,
           redis.exceptions.ReadOnlyError)


def survive_a_full_redis() -> None:
    from kombu.transport import redis as transport
    from kombu.transport import virtual
    qos = transport.QoS
    if getattr(qos, "_aios_survives_full_redis", False):
        return
    append, ack = qos.append, qos.ack

    def append_or_skip(self, message, delivery_tag):
        try:
            append(self, message, delivery_tag)
        except REFUSED as exc:
            log.warning("broker: delivery %s not recorded as unacked (%s)", delivery_tag, exc)
            virtual.QoS.append(self, message, delivery_tag)

    def ack_or_skip(self, delivery_tag):
        try:
            ack(self, delivery_tag)
        except REFUSED as exc:
            log.warning("broker: ack of %s not written (%s); its redelivery will be a no-op",
                        delivery_tag, exc)
            virtual.QoS.ack(self, delivery_tag)

    qos.append, qos.ack = append_or_skip, ack_or_skip
    qos._aios_survives_full_redis = True
