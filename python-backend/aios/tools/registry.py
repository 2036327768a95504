"""Tools by name; each is built per run from the worker's resources, its imports lazy.
MCP servers' tools join them as `mcp__<server>__<tool>`."""

from .base import ToolRegistry

MCP_PREFIX = "mcp__"


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


def _copy_to_sandbox(resources):
    from .files import make_copy_to_sandbox
    return make_copy_to_sandbox(resources)


TOOLS = ToolRegistry({"run_code": _run_code, "browse": _browse, "list_files": _list_files,
                      "read_file": _read_file, "copy_to_sandbox": _copy_to_sandbox})
DEFAULT_TOOLS = ["run_code", "browse", "list_files", "read_file", "copy_to_sandbox"]


def build_tools(names, resources) -> list:
    """The tools a run enables: `names`, or by default every built-in tool and every tool
    of the MCP servers that are up."""
    if names is None:
        return TOOLS.build(DEFAULT_TOOLS, resources) + _mcp_tools(resources)
    mcp = {t.name: t for t in _mcp_tools(resources)} \
        if any(n.startswith(MCP_PREFIX) for n in names) else {}
    missing = [n for n in names if n.startswith(MCP_PREFIX) and n not in mcp]
    if missing:
        raise KeyError(f"MCP tools not available now: {missing}; available: "
                       f"{', '.join(mcp) or 'none'} (GET /api/mcp shows each server's state)")
    built = TOOLS.build([n for n in names if not n.startswith(MCP_PREFIX)], resources)
    return built + [mcp[n] for n in names if n.startswith(MCP_PREFIX)]


def _mcp_tools(resources) -> list:
    return resources.mcp.tools() if resources.settings.aios_mcp_config else []
