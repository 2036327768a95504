"""What the pipeline knows of a task kind: the model its input must fit and the function
that runs it. The kinds themselves (aios.kinds) are handed to the service and the runner,
so that the pipeline depends on none of them."""

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from pydantic import BaseModel, ConfigDict, ValidationError

from .context import RunContext
from .errors import BadTaskInput


class TaskInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


# (the run's context, the validated input, the worker's dependencies) -> the task's result.
# It raises TaskFailed or Cancelled (tasks.errors) to end otherwise.
RunKind = Callable[[RunContext, dict, Any], dict]


@dataclass(frozen=True)
class Kind:
    input: type[TaskInput]
    run: RunKind


Kinds = Mapping[str, Kind]


def validate_input(kinds: Kinds, kind: object, task_input: object,
                   context: Optional[dict] = None) -> dict:
    """The input as its kind's model reads it (defaults left out), or BadTaskInput saying
    what is wrong. `context` reaches the models' validators (the web's file reader...)."""
    if not isinstance(kind, str) or kind not in kinds:  # a JSON object or list: unhashable
        raise BadTaskInput(f"unknown task kind {kind!r}; available: {', '.join(kinds)}")
    if not isinstance(task_input, dict):
        raise BadTaskInput("`input` must be a JSON object")
    try:
        return kinds[kind].input.model_validate(task_input, context=context).model_dump(
            exclude_none=True)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}"
                             for e in exc.errors())
        raise BadTaskInput(f"invalid input for {kind!r}: {problems}") from None
