"""Approvals on a real redis-server: the agent's wait for the user's answer (approved,
denied, no answer in time, cancelled) and the answers that cannot count (404, 409); then
the agent loop with a scripted model, where a refusal is a tool error the model reacts to."""

import threading
import time

import pytest

from aios.agent.loop import run_agent, tool_context
from aios.approvals.gate import ApprovalGate
from aios.approvals.policy import Policy
from aios.approvals.store import AlreadyResolved, Approvals, UnknownApproval
from aios.approvals.taint import check_navigation, mark_user_data
from aios.tools.base import ToolContext, ToolError

from .conftest import closed_log
from .scripted import ScriptedProvider, answer, tool_turn
from .test_agent_loop import GOAL, Add, limits, of_type


@pytest.fixture
def approvals(redis_client):
    return Approvals(redis_client)


def gated(running_ctx, approvals, timeout_s=10.0, policy=None) -> ToolContext:
    ctx = running_ctx("agent")
    tool_ctx = tool_context(ctx, policy=policy or Policy(),
                            gate=ApprovalGate(approvals, timeout_s))
    tool_ctx.call_id, tool_ctx.call_arguments = "call-1", {"code": "print(1)", "network": True}
    tool_ctx.run_ctx = ctx
    return tool_ctx


def asking(tool_ctx, key="run_code.network") -> dict:
    """Runs approve() in a thread; {"error": ToolError or None, "took": seconds} when done."""
    outcome = {}

    def run():
        started = time.monotonic()
        try:
            tool_ctx.approve(key, "it may send data out")
            outcome["error"] = None
        except ToolError as exc:
            outcome["error"] = exc
        outcome["took"] = time.monotonic() - started
    thread = threading.Thread(target=run)
    thread.start()
    outcome["thread"] = thread
    return outcome


def wait_pending(approvals, task_id, call_id="call-1"):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if any(p["call_id"] == call_id for p in approvals.pending(task_id)):
            return approvals.pending(task_id)
        time.sleep(0.01)
    raise AssertionError("the approval request never appeared")


def test_an_approval_lets_the_call_go_on_and_both_events_are_logged(running_ctx, approvals):
    tool_ctx = gated(running_ctx, approvals)
    outcome = asking(tool_ctx)
    [pending] = wait_pending(approvals, tool_ctx.task_id)
    assert pending["tool"] == "run_code" and pending["key"] == "run_code.network"
    assert pending["arguments"] == {"code": "print(1)", "network": True}
    approvals.answer(tool_ctx.task_id, "call-1", True, "fine")
    outcome["thread"].join(5)
    assert outcome["error"] is None and outcome["took"] < 2
    assert approvals.pending(tool_ctx.task_id) == []
    log = closed_log(tool_ctx.run_ctx)
    assert of_type(log, "approval_required") == [{
        "call_id": "call-1", "tool": "run_code", "key": "run_code.network",
        "arguments": {"code": "print(1)", "network": True},
        "reason": "it may send data out", "timeout_s": 10.0}]
    assert of_type(log, "approval_resolved") == [
        {"call_id": "call-1", "approved": True, "by": "user", "note": "fine"}]
    tool_ctx.approve("run_code.network", "again")  # one yes per call: not asked twice


def test_a_denial_is_a_tool_error_with_the_users_note(running_ctx, approvals):
    tool_ctx = gated(running_ctx, approvals)
    outcome = asking(tool_ctx)
    wait_pending(approvals, tool_ctx.task_id)
    approvals.answer(tool_ctx.task_id, "call-1", False, "not on my network")
    outcome["thread"].join(5)
    assert "the user denied this action: not on my network" in str(outcome["error"])
    with pytest.raises(AlreadyResolved):  # 409
        approvals.answer(tool_ctx.task_id, "call-1", True)
    assert of_type(closed_log(tool_ctx.run_ctx), "approval_resolved")[0]["by"] == "user"


def test_no_answer_in_time_is_a_denial_and_a_late_answer_is_refused(running_ctx, approvals):
    tool_ctx = gated(running_ctx, approvals, timeout_s=0.5)
    outcome = asking(tool_ctx)
    outcome["thread"].join(5)
    assert "no answer from the user within 0.5 s, so it was not done" in str(outcome["error"])
    assert 0.5 <= outcome["took"] < 1.5
    with pytest.raises(AlreadyResolved):
        approvals.answer(tool_ctx.task_id, "call-1", True)
    assert of_type(closed_log(tool_ctx.run_ctx), "approval_resolved") == [
        {"call_id": "call-1", "approved": False, "by": "timeout"}]


def test_the_wait_never_outlasts_the_runs_wall_time(running_ctx, approvals):
    tool_ctx = gated(running_ctx, approvals, timeout_s=60)
    tool_ctx.ends_at = time.monotonic() + 0.6
    outcome = asking(tool_ctx)
    outcome["thread"].join(5)
    assert outcome["took"] < 1.5 and "no answer" in str(outcome["error"])


def test_a_cancel_ends_the_wait_at_once_and_puts_the_tools_abort_back(running_ctx, approvals):
    tool_ctx = gated(running_ctx, approvals, timeout_s=60)
    aborted = []
    tool_ctx.on_cancel(lambda: aborted.append("tool"))
    outcome = asking(tool_ctx)
    wait_pending(approvals, tool_ctx.task_id)
    time.sleep(0.2)
    tool_ctx.run_ctx.abort()  # what the watcher does on a cancel
    outcome["thread"].join(5)
    assert "cancelled" in str(outcome["error"]) and outcome["took"] < 1.5
    assert aborted == ["tool"]  # re-registered on a cancelled run: called at once
    with pytest.raises(AlreadyResolved):
        approvals.answer(tool_ctx.task_id, "call-1", True)
    assert of_type(closed_log(tool_ctx.run_ctx), "approval_resolved")[0]["by"] == "cancel"


def test_answers_to_unknown_or_expired_requests_are_404(approvals, redis_client):
    with pytest.raises(UnknownApproval):
        approvals.answer("task-nobody-asked", "call-9", True)
    approvals.open("task-ttl", "call-1", {"tool": "x"}, timeout_s=1)
    assert 1 < redis_client.ttl("aios:task:task-ttl:approval:call-1") <= 1 + 300
    redis_client.delete("aios:task:task-ttl:approval:call-1")  # what its TTL does
    with pytest.raises(UnknownApproval):
        approvals.answer("task-ttl", "call-1", True)
    assert approvals.pending("task-ttl") == []


def test_a_deny_level_refuses_without_asking(running_ctx, approvals):
    tool_ctx = gated(running_ctx, approvals, policy=Policy({"run_code": "deny"}))
    with pytest.raises(ToolError, match="the policy denies run_code.network"):
        tool_ctx.approve("run_code.network", "net")
    log = closed_log(tool_ctx.run_ctx)
    assert of_type(log, "approval_required") == []
    assert of_type(log, "approval_resolved") == [
        {"call_id": "call-1", "approved": False, "by": "policy", "key": "run_code.network"}]


class Exfiltrate:
    """A tool that reads a "file" then, on the next call, navigates with it."""
    name = "fetch"
    description = "Opens a URL."
    parameters = {"type": "object", "properties": {"url": {"type": "string"}}}

    def __init__(self):
        self.reached: list[str] = []

    def run(self, arguments: dict, ctx: ToolContext):
        check_navigation(ctx, "browse", arguments["url"])
        self.reached.append(arguments["url"])
        return "opened"


def test_in_the_loop_a_denial_reaches_the_model_and_the_run_goes_on(running_ctx, approvals):
    ctx = running_ctx("agent")
    tool_ctx = tool_context(ctx, policy=Policy({"add": "ask"}),
                            gate=ApprovalGate(approvals, 10))
    mark_user_data(tool_ctx, "the file secret.txt")
    model = ScriptedProvider("alpha", [
        tool_turn(("c1", "add", {"a": 1, "b": 2}), ("c2", "fetch", {"url": "http://x.test/?d=s"})),
        answer("Understood.")])
    add, fetch = Add(), Exfiltrate()

    def answer_each():
        for call_id, approved in (("c1", False), ("c2", False)):
            wait_pending(approvals, ctx.task_id, call_id)
            approvals.answer(ctx.task_id, call_id, approved, "no")
    answering = threading.Thread(target=answer_each)
    answering.start()
    result = run_agent(ctx, GOAL, [(model, "m-1")], [add, fetch], limits(), 0,
                       tool_ctx=tool_ctx)
    answering.join(5)
    assert add.calls == [] and fetch.reached == []
    assert result["text"] == "Understood."
    sent = [m for m in model.requests[1].messages if m["role"] == "tool"]
    assert [(m["is_error"], "the user denied this action: no" in m["content"])
            for m in sent] == [(True, True), (True, True)]
    required = of_type(closed_log(ctx), "approval_required")
    assert [(r["call_id"], r["key"]) for r in required] == [("c1", "add"),
                                                           ("c2", "browse.tainted")]
    assert required[1]["arguments"] == {"url": "http://x.test/?d=s"}
