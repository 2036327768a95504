"""Placement of runs, sessions and browsers over several sandbox managers: the policy (a
fake clock, scripted /health answers) and the pool's routing of calls and failures (scripted
managers at the SandboxClient seam; the real ones: tests/integration/test_sandbox_hosts.py)."""

import random

import pytest

from aios.sandbox.client import SandboxError
from aios.sandbox.placement import Placement
from aios.sandbox.pool import SandboxPool


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def health(active=0, cap=4, sessions=0, egress=True, browsers=True, name="m") -> dict:
    return {"status": "ok", "name": name,
            "counts": {"active_runs": active, "sessions": sessions, "browsers": 0},
            "capacity": {"max_active_runs": cap, "max_sessions": 8, "max_browsers": 2},
            "features": {"egress": egress, "browsers": browsers}}


def placement(*keys, clock=None) -> Placement:
    return Placement(keys or ("a", "b"), clock or Clock(), random.Random(7))


def test_least_loaded_healthy_manager_is_chosen():
    p = placement()
    p.observe("a", 200, health(active=3))
    p.observe("b", 200, health(active=1))
    assert p.choose("run") == "b"


def test_ties_are_spread_at_random():
    p = placement()
    p.observe("a", 200, health())
    p.observe("b", 200, health())
    assert {p.choose("run") for _ in range(40)} == {"a", "b"}


def test_in_flight_work_counts_until_the_next_answer():
    p = placement()
    p.observe("a", 200, health(active=0, cap=4))
    p.observe("b", 200, health(active=1, cap=4))
    p.started("a", "run")
    p.started("a", "run")
    assert p.choose("run") == "b"  # a: 0 reported + 2 of ours since
    p.observe("a", 200, health(active=2, cap=4))  # its answer includes ours: not counted twice
    assert p.managers["a"].load("run") == 2
    p.ended("a", "run")
    p.ended("a", "run")
    assert p.choose("run") == "a" and p.managers["a"].load("run") == 0


def test_load_is_a_share_of_each_cap():
    p = placement()
    p.observe("a", 200, health(active=3, cap=16))
    p.observe("b", 200, health(active=2, cap=4))
    assert p.choose("run") == "a"


def test_a_full_manager_is_passed_over_but_still_beats_a_down_one():
    p = placement("a", "b", "c")
    p.observe("a", 200, health(active=4, cap=4))
    p.observe("b", 200, health(active=0))
    p.failed("c", "connection refused")
    assert p.choose("run") == "b"
    assert p.choose("run", exclude=["b"]) == "a"  # full: it answers 429 with Retry-After
    assert p.choose("run", exclude=["a", "b"]) == "c"  # down: tried anyway, last
    assert p.choose("run", exclude=["a", "b", "c"]) is None


def test_a_refusal_for_capacity_counts_it_full_until_it_answers_again():
    p = placement()
    p.observe("a", 200, health(active=0))
    p.observe("b", 200, health(active=2))
    p.full("a", "run")
    assert p.choose("run") == "b"
    p.observe("a", 200, health(active=0))
    assert p.choose("run") == "a"


def test_a_down_manager_is_avoided_and_used_again_once_healthy():
    clock = Clock()
    p = placement(clock=clock)
    p.observe("a", 200, health())
    p.observe("b", 200, health(active=3))
    p.failed("a", "connection refused")
    assert p.choose("run") == "b" and p.is_down("a")
    assert p.stale() == []
    clock.now += 2.0
    assert sorted(p.stale()) == ["a", "b"]  # asked again after the TTL, the down one too
    p.observe("a", 200, health())
    assert p.choose("run") == "a" and not p.is_down("a")


def test_an_unhealthy_answer_marks_it_down_with_the_reason():
    p = placement()
    p.observe("a", 503, {"status": "unavailable"})
    p.observe("b", 0, None, "ConnectError: refused")
    shown = p.managers
    assert shown["a"].up is False and "503" in shown["a"].error
    assert shown["b"].error == "ConnectError: refused"


def test_managers_not_asked_yet_are_tried():
    p = placement()
    assert p.choose("run") in ("a", "b")
    assert sorted(p.stale()) == ["a", "b"]


def test_work_goes_only_where_it_is_offered():
    p = placement()
    p.observe("a", 200, health(egress=False, browsers=False))
    p.observe("b", 200, health(active=3, sessions=7))
    assert p.choose("run", "egress") == "b"
    assert p.choose("browser") == "b"
    assert p.choose("run", "egress", exclude=["b"]) is None
    assert p.choose("session") == "a"  # sessions: a has 8 free, b 1


def test_when_no_manager_offers_it_each_is_asked_and_says_why_not():
    p = placement()
    p.observe("a", 200, health(browsers=False))
    p.observe("b", 200, health(browsers=False))
    assert p.choose("browser") in ("a", "b")


# --- the pool: routing calls over scripted managers -------------------------------------

class Scripted:
    """A manager at the SandboxClient seam: each call pops its next scripted outcome."""

    def __init__(self, name, *outcomes):
        self.name, self.outcomes, self.calls = name, list(outcomes), []

    def _next(self, what, *args):
        self.calls.append((what, *args))
        outcome = self.outcomes.pop(0) if self.outcomes else {"exit_code": 0, "on": self.name}
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def run(self, body, on_output, owner, register_close=None):
        if self.outcomes and callable(self.outcomes[0]):  # the caller cuts the stream
            self.outcomes.pop(0)(register_close)
        return self._next("run", body)

    def create_session(self, owner, *args, **kwargs):
        return self._next("create_session", owner)

    def exec(self, sandbox_id, body, on_output, register_close=None):
        if self.outcomes and callable(self.outcomes[0]):
            self.outcomes.pop(0)(register_close)
        return self._next("exec", sandbox_id)

    def exists(self, sandbox_id):
        return self._next("exists", sandbox_id)

    def health(self, timeout_s):
        return 200, health(name=self.name), ""


def refused():
    return SandboxError("sandbox_unreachable", "sandbox manager: connection refused",
                        refused=True, host_failed=True)


def lost_mid_run():
    return SandboxError("sandbox_unreachable", "sandbox manager: peer closed connection",
                        refused=False, host_failed=True)


def pool(*clients, rerun_lost=1):
    """The first manager is the least loaded: chosen first."""
    by_key = {c.name: c for c in clients}
    p = Placement(by_key, Clock(), random.Random(3))
    for i, key in enumerate(by_key):
        p.observe(key, 200, health(active=i, name=key))
    return SandboxPool(by_key, p, rerun_lost)


def test_a_run_refused_before_it_started_goes_to_another_manager():
    a, b = Scripted("a", refused()), Scripted("b")
    sandboxes = pool(a, b)
    assert sandboxes.run({"code": "1"}, print, "task:t")["on"] == "b"
    assert len(a.calls) == 1 and sandboxes.placement.is_down("a")
    assert sandboxes.run({"code": "1"}, print, "task:t")["on"] == "b"  # a stays avoided


def test_a_busy_answer_from_every_manager_is_raised_for_the_capacity_wait():
    busy = SandboxError("at_capacity", "16 runs in progress", retry_after_s=1.5)
    sandboxes = pool(Scripted("a", busy), Scripted("b", busy))
    with pytest.raises(SandboxError) as raised:
        sandboxes.run({"code": "1"}, print, "task:t")
    assert raised.value.busy and raised.value.retry_after_s == 1.5


def test_a_lone_unreachable_manager_fails_the_run_as_before():
    sandboxes = pool(Scripted("a", refused()))
    with pytest.raises(SandboxError) as raised:
        sandboxes.run({"code": "1"}, print, "task:t")
    assert raised.value.code == "sandbox_unreachable"


def test_a_started_run_whose_manager_died_runs_again_elsewhere_once_and_says_so():
    a, b = Scripted("a", lost_mid_run()), Scripted("b")
    notes = []
    result = pool(a, b).run({"code": "1"}, print, "task:t", on_note=notes.append)
    assert result["on"] == "b" and len(a.calls) == len(b.calls) == 1
    assert len(notes) == 1 and "the sandbox host a was lost" in notes[0]
    assert "running it again from the start on another host" in notes[0]


def test_a_started_run_is_not_run_again_past_its_budget_or_with_network():
    a, b = Scripted("a", lost_mid_run(), lost_mid_run()), Scripted("b", lost_mid_run())
    with pytest.raises(SandboxError):  # lost twice: the budget of one re-run is spent
        pool(a, b).run({"code": "1"}, print, "task:t")
    a, b = Scripted("a", lost_mid_run()), Scripted("b", lost_mid_run())
    with pytest.raises(SandboxError):  # with network it may have sent something: once only
        pool(a, b).run({"code": "1", "network": "egress"}, print, "task:t")
    assert len(a.calls) + len(b.calls) == 1
    a, b = Scripted("a", lost_mid_run()), Scripted("b", lost_mid_run())
    with pytest.raises(SandboxError):
        pool(a, b, rerun_lost=0).run({"code": "1"}, print, "task:t")
    assert len(a.calls) + len(b.calls) == 1


def test_a_failure_of_the_run_itself_is_not_retried():
    invalid = SandboxError("invalid", "unknown language")
    a, b = Scripted("a", invalid), Scripted("b", invalid)
    with pytest.raises(SandboxError) as raised:
        pool(a, b).run({"code": "1"}, print, "task:t")
    assert raised.value.code == "invalid" and len(a.calls) + len(b.calls) == 1


def test_a_session_names_its_manager_and_its_calls_go_there():
    a, b = Scripted("a", "s1", "s2"), Scripted("b", "s1", "s2")
    sandboxes = pool(a, b)
    sandbox_id = sandboxes.create_session("session:x", 60, timeout_s=30)
    raw, _, key = sandbox_id.partition("@")
    holder = {"a": a, "b": b}[key]
    sandboxes.exec(sandbox_id, {"code": "1"}, print)
    assert holder.calls[-1] == ("exec", raw)


def test_a_lone_manager_keeps_bare_ids_and_bare_ids_go_to_the_first():
    a = Scripted("a", "s1")
    assert pool(a).create_session("session:x", 60) == "s1"
    a, b = Scripted("a"), Scripted("b")
    pool(a, b).exec("old", {"code": "1"}, print)
    assert a.calls == [("exec", "old")] and b.calls == []


def test_a_session_whose_manager_is_gone_fails_clearly():
    a, b = Scripted("a", refused()), Scripted("b")
    sandboxes = pool(a, b)
    with pytest.raises(SandboxError) as raised:
        sandboxes.exec("s1@a", {"code": "1"}, print)
    assert raised.value.code == "sandbox_host_unavailable"
    assert "the session's sandbox host a is unavailable" in str(raised.value)
    assert b.calls == [] and sandboxes.placement.is_down("a")
    with pytest.raises(SandboxError) as raised:
        sandboxes.exists("s1@gone:8000")
    assert raised.value.code == "sandbox_host_unavailable" and "no longer configured" in str(
        raised.value)


def cancelled_mid_run(register_close):
    """The task is cancelled: its abort (registered by the call) cuts the stream."""
    register_close(lambda: None)
    cancel[-1]()


cancel = []


def test_a_stream_cut_by_a_cancel_is_neither_run_again_nor_a_sign_of_a_dead_manager():
    a, b = Scripted("a", cancelled_mid_run, lost_mid_run()), Scripted("b")
    sandboxes = pool(a, b)
    with pytest.raises(SandboxError):
        sandboxes.run({"code": "1"}, print, "task:t", register_close=cancel.append)
    assert b.calls == [] and not sandboxes.placement.is_down("a")
    a = Scripted("a", cancelled_mid_run, lost_mid_run())
    sandboxes = pool(a, Scripted("b"))
    with pytest.raises(SandboxError) as raised:
        sandboxes.exec("s1@a", {"code": "1"}, print, register_close=cancel.append)
    assert raised.value.code == "sandbox_unreachable" and not sandboxes.placement.is_down("a")
