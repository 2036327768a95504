"""The one table of AI-OS's tools: the agent builds a run's tools from it, and AI-OS's own
MCP server serves tools from it. Adding a tool is a module with a `make_<tool>(deps)`
factory and one line here (docs/architecture.md has the recipe). MCP servers' tools join
a run as `mcp__<server>__<tool>`."""

from ..deps import Deps
from .base import Tool, ToolRegistry

MCP_PREFIX = "mcp__"

# In this order the model sees them; an agent task without `tools` gets them all
TOOLS = ToolRegistry({
    "run_code": "aios.tools.run_code:make_run_code",
    "browse": "aios.tools.browse:make_browse",
    **{name: f"aios.tools.browser_tools:make_{name}" for name in (
        "browser_navigate", "browser_snapshot", "browser_click", "browser_type",
        "browser_select", "browser_press", "browser_scroll", "browser_back", "browser_tabs",
        "browser_screenshot", "browser_download")},
    "list_files": "aios.tools.files:make_list_files",
    "read_file": "aios.tools.files:make_read_file",
    "copy_to_sandbox": "aios.tools.files:make_copy_to_sandbox",
})
DEFAULT_TOOLS = list(TOOLS.factories)

# What `python -m aios.mcp.server` serves unless told otherwise: each MCP call has a context
# of its own, so copy_to_sandbox (which fills a sandbox for later calls) has no use there
SERVED_OVER_MCP = ["run_code", "browse", "read_file"]


def build_tools(names, deps: Deps) -> list[Tool]:
    """The tools a run enables: `names`, or by default every built-in tool and every tool
    of the MCP servers that are up."""
    if names is None:
        return TOOLS.build(DEFAULT_TOOLS, deps) + _mcp_tools(deps)
    mcp = {t.name: t for t in _mcp_tools(deps)} \
        if any(n.startswith(MCP_PREFIX) for n in names) else {}
    missing = [n for n in names if n.startswith(MCP_PREFIX) and n not in mcp]
    if missing:
        raise KeyError(f"MCP tools not available now: {missing}; available: "
                       f"{', '.join(mcp) or 'none'} (GET /api/mcp shows each server's state)")
    built = TOOLS.build([n for n in names if not n.startswith(MCP_PREFIX)], deps)
    return built + [mcp[n] for n in names if n.startswith(MCP_PREFIX)]


def _mcp_tools(deps: Deps) -> list[Tool]:
    return deps.mcp.tools() if deps.settings.mcp_config_path else []
