"""What all the connections of one proxy may use together: how many at a time, and how many
bytes in all, counted both ways (a sandbox uploading is as much traffic as one downloading).
Once the bytes are spent they stay spent: the connection that went over is cut, and every
later byte and connection is refused."""

import threading
from typing import Optional


class Budget:
    def __init__(self, max_total_bytes: Optional[int] = None,
                 max_connections: Optional[int] = None):
        self.max_total_bytes, self.max_connections = max_total_bytes, max_connections
        self.spent = 0  # counted even without a limit: it is worth logging
        self.active = 0
        self.exhausted = False
        self._lock = threading.Lock()

    def admit(self) -> Optional[tuple[int, str]]:
        """Count one more connection, or say why not: (HTTP status, reason)."""
        with self._lock:
            if self.exhausted:
                return 403, f"refused: {self.spent_reason()}"
            if self.max_connections is not None and self.active >= self.max_connections:
                return 429, (f"refused: too many connections (at most {self.max_connections} "
                             f"at a time)")
            self.active += 1
            return None

    def release(self) -> None:
        with self._lock:
            self.active -= 1

    def spend(self, count: int) -> bool:
        """Count `count` bytes about to be relayed; False (and nothing counted) if they would
        go over the limit, which is then spent for good."""
        with self._lock:
            limit = self.max_total_bytes
            if self.exhausted or (limit is not None and self.spent + count > limit):
                self.exhausted = True
                return False
            self.spent += count
            return True

    def spent_reason(self) -> str:
        return f"the byte budget of {self.max_total_bytes} bytes is spent"
