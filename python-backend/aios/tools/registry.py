"""Tools by name; each is built per run from the worker's resources, its imports lazy."""

from .base import ToolRegistry


def _run_code(resources):
    from .run_code import make_run_code
    return make_run_code(resources)


def _browse(resources):
    from .browse import make_browse
    return make_browse(resources)


TOOLS = ToolRegistry({"run_code": _run_code, "browse": _browse})
DEFAULT_TOOLS = ["run_code", "browse"]
