"""The user's answer to an agent's approval request, for REST and Socket.IO alike."""

from ..approvals.store import AlreadyResolved, Approvals, UnknownApproval
from ..tasks.store import FINAL
from .api_models import ApprovalAnswer
from .errors import ApiError
from .state import web_state


def approvals() -> Approvals:
    return Approvals(web_state().redis)


def answer(task_id: str, call_id: str, body: ApprovalAnswer) -> dict:
    """{approved, note?} (validated) -> {task_id, call_id, approved}; ApiError 404 (no such
    task or request, or expired), 409 (answered already, or the task ended), 422."""
    approved, note = body.approved, body.note
    if not isinstance(call_id, str):
        raise ApiError(422, "`call_id` must be the call_id of the approval_required event")
    if not 0 < len(call_id) <= 200:
        raise ApiError(404, f"task {task_id} has no approval request {call_id!r}")
    task = web_state().tasks.get(task_id)  # TaskNotFound: 404
    if task["status"] in FINAL:
        raise ApiError(409, f"task {task_id} has ended ({task['status']}): nothing waits "
                            "for an answer")
    try:
        approvals().answer(task_id, call_id, approved, note or None)
    except UnknownApproval as exc:
        raise ApiError(404, str(exc)) from None
    except AlreadyResolved as exc:
        raise ApiError(409, str(exc)) from None
    return {"task_id": task_id, "call_id": call_id, "approved": approved}


def with_pending(task: dict) -> dict:
    """A running task with its open approval requests (`pending_approvals`)."""
    if task.get("status") == "running":
        task["pending_approvals"] = approvals().pending(task["task_id"])
    return task
