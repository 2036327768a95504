"""Tools by name; each is built per run from the worker's resources, its imports lazy."""

from .base import ToolRegistry


def _run_code(resources):
    from .run_code import make_run_code
    return make_run_code(resources)


def _browse(resources):
    from .browse import make_browse
    return make_browse(resources)


def _list_files(resources):
    from .files import make_list_files
    return make_list_files(resources)


def _read_file(resources):
    from .files import make_read_file
    return make_read_file(resources)


TOOLS = ToolRegistry({"run_code": _run_code, "browse": _browse, "list_files": _list_files,
                      "read_file": _read_file})
DEFAULT_TOOLS = ["run_code", "browse", "list_files", "read_file"]
