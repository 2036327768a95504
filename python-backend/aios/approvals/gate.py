"""The agent waiting for the user's answer. The worker slot stays held while it waits:
the run's live state (its conversation mid-turn, its taint, its MCP connections) is in this
process (the page and the sandbox are in their containers), and the wait is bounded by
AIOS_APPROVAL_TIMEOUT_S and the run's remaining wall time."""

import time
from dataclasses import dataclass, replace
from typing import Optional

from .store import Answer, Approvals


@dataclass
class ApprovalGate:
    approvals: Approvals
    timeout_s: float

    def ask(self, ctx, call_id: str, tool: str, arguments: Optional[dict], reason: str,
            key: str = "") -> Answer:
        """Emits approval_required, waits for the answer (or a timeout, or a cancel), emits
        approval_resolved. ctx is the run's ToolContext (its ends_at: the run's wall-time
        end, time.monotonic())."""
        timeout = self.timeout_s
        if ctx.ends_at is not None:
            timeout = max(0.0, min(timeout, ctx.ends_at - time.monotonic()))
        question = {"tool": tool, "key": key or tool, "arguments": arguments or {},
                    "reason": reason, "timeout_s": round(timeout, 1)}
        self.approvals.open(ctx.task_id, call_id, question, timeout)
        ctx.emit("approval_required", {"call_id": call_id, **question})
        answer = replace(self._wait(ctx, call_id, timeout), timeout_s=round(timeout, 1))
        ctx.emit("approval_resolved", {"call_id": call_id, "approved": answer.approved,
                                       "by": answer.by,
                                       **({"note": answer.note} if answer.note else {})})
        return answer

    def _wait(self, ctx, call_id: str, timeout: float) -> Answer:
        previous = ctx.current_abort
        ctx.on_cancel(lambda: self.approvals.wake(ctx.task_id, call_id))
        try:
            got = None
            if not ctx.cancelled.is_set():
                got = self.approvals.next_answer(ctx.task_id, call_id, timeout)
        finally:
            ctx.on_cancel(previous or (lambda: None))
        if got:  # the user's
            return Answer(bool(got["approved"]), "user", got.get("note"))
        out_of_time = ctx.ends_at is not None and time.monotonic() >= ctx.ends_at - 0.5
        by = "cancel" if ctx.cancelled.is_set() or (got == {} and not out_of_time) \
            else "timeout"
        if not self.approvals.close(ctx.task_id, call_id, by) and by == "timeout":
            late = self.approvals.take(ctx.task_id, call_id)  # it came as time ran out
            if late:
                return Answer(bool(late["approved"]), "user", late.get("note"))
        return Answer(False, by)
