"""A warm pool of started, verified containers for one-shot runs (size 0 disables it)."""

import asyncio
import logging
from collections import deque
from typing import Optional

from .sandbox import Launcher, Sandbox, SandboxUnavailable

log = logging.getLogger(__name__)


class WarmPool:
    def __init__(self, launcher: Launcher, size: int, max_age_s: float, on_failure=None):
        self.launcher = launcher
        self.size = size
        self.max_age_s = max_age_s
        self.on_failure = on_failure  # called with the error when a refill fails
        self._ready: deque[Sandbox] = deque()
        self._wanted = asyncio.Event()
        self._task: Optional[asyncio.Task] = None

    @property
    def ready(self) -> int:
        return len(self._ready)

    def start(self) -> None:
        if self.size > 0:
            self._task = asyncio.create_task(self._fill_forever())
            self._wanted.set()

    def take(self) -> Optional[Sandbox]:
        """A fresh started container, or None when the pool is empty."""
        while self._ready:
            sandbox = self._ready.popleft()
            self._wanted.set()
            if not sandbox.expired():
                return sandbox
            asyncio.create_task(self.launcher.destroy(sandbox))
        return None

    def drop_expired(self) -> None:
        for sandbox in [s for s in self._ready if s.expired()]:
            self._ready.remove(sandbox)
            asyncio.create_task(self.launcher.destroy(sandbox))
        if len(self._ready) < self.size:
            self._wanted.set()

    async def _fill_forever(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            while len(self._ready) < self.size:
                try:
                    sandbox = await self.launcher.launch(
                        self.launcher.settings.defaults, "pool", "pool", self.max_age_s)
                except SandboxUnavailable as exc:
                    log.warning("pool refill failed: %s", exc)
                    if self.on_failure:
                        self.on_failure(exc)
                    await asyncio.sleep(2.0)
                    continue
                self._ready.append(sandbox)

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        ready, self._ready = list(self._ready), deque()
        await asyncio.gather(*(self.launcher.destroy(s) for s in ready),
                             return_exceptions=True)
