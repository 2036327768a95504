"""How full Redis is. With `maxmemory` and `noeviction` (the broker must never drop keys), a
full Redis refuses every write: new tasks are refused before that, at a high-water mark, so
that the tasks already accepted can still log their output and record their end."""

import time
from typing import Optional

import redis


class StorageFull(RuntimeError):
    """Redis is too full to accept new tasks now."""

    retry_after_s = 5

    def __init__(self, ratio: float):
        self.ratio = ratio
        super().__init__(f"Redis is {ratio:.0%} full (its maxmemory): new tasks are refused "
                         "until the tasks in progress have freed some space; retry later")


class RedisPressure:
    def __init__(self, client: redis.Redis, high_water: float, ttl_s: float = 0.5):
        self.redis = client
        self.high_water = high_water
        self.ttl_s = ttl_s  # INFO is not free: read it at most this often
        self._read_at = -ttl_s
        self._ratio: Optional[float] = None

    def ratio(self, fresh: bool = False) -> Optional[float]:
        """used_memory / maxmemory, or None without a maxmemory."""
        now = time.monotonic()
        if fresh or now - self._read_at >= self.ttl_s:
            info = self.redis.info("memory")
            limit = int(info.get("maxmemory") or 0)
            self._ratio = int(info["used_memory"]) / limit if limit else None
            self._read_at = now
        return self._ratio

    def check(self) -> None:
        ratio = self.ratio()
        if ratio is not None and ratio >= self.high_water:
            raise StorageFull(ratio)

    def refused(self) -> StorageFull:
        """Redis refused a write for want of memory: full, until it says otherwise."""
        self._ratio, self._read_at = 1.0, time.monotonic()
        return StorageFull(1.0)
