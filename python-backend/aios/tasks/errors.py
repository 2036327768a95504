"""How a task's input is refused, and how a run ends other than with a result."""


class BadTaskInput(ValueError):
    """Unknown kind or malformed input: the message says what is wrong."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


class Cancelled(Exception):
    """The run stopped because the task was cancelled."""


class TaskFailed(Exception):
    """The run failed for a reason its kind names: the task's error `{code, message}`."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def failed(ctx, exc: Exception, code: str) -> Exception:
    """What a failure of a kind's dependency becomes: `cancelled` when it came from a
    cancel (the stream or run was cut on purpose), else a failure with its code."""
    return Cancelled() if ctx.cancelled.is_set() else TaskFailed(code, str(exc))
