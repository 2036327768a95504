"""Which sandbox manager takes the next run, session or browser: the least loaded healthy one
with free capacity, from its last /health answer plus what this process has in flight there
since. Plain state and rules (no I/O, an injected clock): the pool (pool.py) probes and calls."""

import random
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

HEALTH_TTL_S = 2.0  # an answer older than this is asked again (off the hot path)
# What a manager that does not report its caps is assumed to allow (the manager's defaults)
DEFAULT_CAPS = {"run": 16, "session": 32, "browser": 4}
# /health's counts and capacity fields per kind of work
COUNTED = {"run": ("active_runs", "max_active_runs"), "session": ("sessions", "max_sessions"),
           "browser": ("browsers", "max_browsers")}


@dataclass
class ManagerState:
    key: str
    up: Optional[bool] = None  # None: not asked yet (tried, as if up)
    checked_at: Optional[float] = None
    error: str = ""
    name: str = ""  # the manager's own name (SANDBOX_MANAGER_NAME), once it said it
    reported: dict = field(default_factory=lambda: dict.fromkeys(COUNTED, 0))
    caps: dict = field(default_factory=lambda: dict(DEFAULT_CAPS))
    features: dict = field(default_factory=dict)
    in_flight: dict = field(default_factory=lambda: dict.fromkeys(COUNTED, 0))
    in_flight_at_check: dict = field(default_factory=lambda: dict.fromkeys(COUNTED, 0))

    def load(self, kind: str) -> int:
        """The manager's count as last reported, plus what this process started there since."""
        mine = self.in_flight[kind]
        return max(mine, self.reported[kind] + mine - self.in_flight_at_check[kind])

    def free(self, kind: str) -> int:
        return self.caps[kind] - self.load(kind)

    def offers(self, kind: str, network: str) -> bool:
        """Whether it can do this kind of work at all (as far as its last answer says)."""
        if kind == "browser" and self.features.get("browsers") is False:
            return False
        return not (network == "egress" and self.features.get("egress") is False)


class Placement:
    def __init__(self, keys: Iterable[str], clock: Callable[[], float],
                 rng: Optional[random.Random] = None, ttl_s: float = HEALTH_TTL_S):
        self.managers = {key: ManagerState(key) for key in keys}
        self.clock, self.ttl_s = clock, ttl_s
        self.rng = rng or random.Random()
        self.lock = threading.Lock()  # worker threads (an agent's tools) share one placement

    def choose(self, kind: str, network: str = "none",
               exclude: Iterable[str] = ()) -> Optional[str]:
        """The manager for new work: among those not excluded that can do it, healthy ones with
        free room first (least loaded by share of their cap, ties at random), then healthy
        full ones (they answer 429 with Retry-After), then down ones (tried anyway: a manager
        that came back is found at once, and a lone manager behaves as it always did).
        None when every manager is excluded or none can do it."""
        excluded = set(exclude)
        with self.lock:
            able = [m for m in self.managers.values() if m.offers(kind, network)]
            # none able: each is asked anyway, and says why not itself
            candidates = [m for m in able or self.managers.values() if m.key not in excluded]
            if not candidates:
                return None

            def rank(m: ManagerState) -> tuple:
                tier = 2 if m.up is False else (0 if m.free(kind) > 0 else 1)
                return (tier, m.load(kind) / max(1, m.caps[kind]), self.rng.random())
            return min(candidates, key=rank).key

    def started(self, key: str, kind: str) -> None:
        with self.lock:
            self.managers[key].in_flight[kind] += 1

    def ended(self, key: str, kind: str) -> None:
        with self.lock:
            state = self.managers[key]
            state.in_flight[kind] = max(0, state.in_flight[kind] - 1)

    def observe(self, key: str, status: int, body: Optional[dict], error: str = "") -> None:
        """A /health answer (or none: status 0 and the error): the manager's state now."""
        with self.lock:
            state = self.managers[key]
            state.checked_at = self.clock()
            state.up = status == 200
            state.error = "" if state.up else (error or f"its /health answered {status}")
            if not body:
                return
            state.name = body.get("name") or state.name
            counts, caps = body.get("counts") or {}, body.get("capacity") or {}
            for kind, (count, cap) in COUNTED.items():
                state.reported[kind] = int(counts.get(count, 0))
                state.caps[kind] = int(caps.get(cap, DEFAULT_CAPS[kind]))
            state.in_flight_at_check = dict(state.in_flight)
            state.features = body.get("features") or {}

    def failed(self, key: str, error: str) -> None:
        """A call could not reach it, or it answered as a broken server: down until a probe
        finds it healthy again."""
        with self.lock:
            state = self.managers[key]
            state.up, state.error, state.checked_at = False, error[:300], self.clock()

    def full(self, key: str, kind: str) -> None:
        """It refused for capacity: counted full until its next answer says otherwise."""
        with self.lock:
            state = self.managers[key]
            state.reported[kind] = state.caps[kind] + state.in_flight_at_check[kind]

    def stale(self) -> list[str]:
        """The managers whose state is due to be asked again."""
        now = self.clock()
        with self.lock:
            return [key for key, m in self.managers.items()
                    if m.checked_at is None or now - m.checked_at >= self.ttl_s]

    def is_down(self, key: str) -> bool:
        return self.managers[key].up is False
