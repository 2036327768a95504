"""AI-OS's own tools (run_code, browse, read_file) served to other MCP clients:

  python -m aios.mcp.server --stdio
  python -m aios.mcp.server --http --host 127.0.0.1 --port 8765   (Bearer AIOS_API_TOKEN)

Configured like the worker (AIOS_API_TOKEN, SECRET_KEY, SANDBOX_MANAGER_URL/_TOKEN,
AIOS_FILE_ROOTS...). Each call gets a fresh ToolContext whose cleanups run when it ends,
so run_code's sandbox lives for one call."""

import argparse
import hmac
import logging
import sys
from typing import Optional

import anyio
from mcp import MCPError
from mcp.server import Server
from mcp.server.stdio import stdio_server
from mcp_types import INVALID_PARAMS, ListToolsResult, Tool as ToolSpec
from starlette.responses import JSONResponse

from ..approvals.policy import Policy
from ..tools.registry import SERVED_OVER_MCP, TOOLS
from .calls import OneCall, error_result, to_result

log = logging.getLogger("aios.mcp.server")

def build_tools(deps, names: list[str]) -> list:
    """The named tools of the registry; one whose module cannot be imported (no
    Playwright...) is left out."""
    tools = []
    for name in names:
        try:
            tools.append(TOOLS.build_one(name, deps))
        except ImportError as exc:
            log.warning("not serving %s: %s", name, exc)
    return tools


def build_server(tools: list, policy: Optional[Policy] = None) -> Server:
    """`policy`: the operator's levels (AIOS_TOOL_POLICY); `ask` is refused over MCP."""
    by_name = {tool.name: tool for tool in tools}

    async def list_tools(ctx, params) -> ListToolsResult:
        return ListToolsResult(tools=[ToolSpec(name=t.name, description=t.description,
                                               input_schema=t.parameters) for t in tools])

    async def call_tool(ctx, params):
        tool = by_name.get(params.name)
        if tool is None:
            raise MCPError(INVALID_PARAMS, f"unknown tool {params.name!r}; the tools are: "
                                           f"{', '.join(by_name)}")
        call = OneCall(policy)
        try:
            result = await anyio.to_thread.run_sync(call.run, tool, params.arguments or {},
                                                    abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            call.cancel()  # the client gave up: abort what blocks; cleanups still run
            raise
        except Exception as exc:  # noqa: BLE001 - a ToolError or a bug: both go back
            return error_result(params.name, exc)
        return to_result(result)

    return Server("aios", version="1", on_list_tools=list_tools, on_call_tool=call_tool)


class BearerToken:
    """ASGI middleware: HTTP requests need `Authorization: Bearer <token>` (401 otherwise)."""

    def __init__(self, app, token: str):
        self.app, self.expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                refused = JSONResponse({"error": "unauthorized",
                                        "message": "send Authorization: Bearer <AIOS_API_TOKEN>"},
                                       401, headers={"WWW-Authenticate": 'Bearer realm="aios"'})
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)


def http_app(server: Server, token: str, host: str):
    return BearerToken(server.streamable_http_app(host=host), token)


async def serve_stdio(server: Server) -> None:
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def main(argv=None) -> None:
    args = _arguments(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from ..resources import WorkerResources
    from ..settings import load_settings
    settings = load_settings()
    deps = WorkerResources(settings)
    server = build_server(build_tools(deps, args.tools), Policy(settings.tool_policy))
    try:
        if args.stdio:
            anyio.run(serve_stdio, server)
        else:
            import uvicorn
            app = http_app(server, settings.api_token.get_secret_value(), args.host)
            uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        for name in ("sandbox",):  # only what was made
            if name in vars(deps):
                vars(deps)[name].close()


def _arguments(argv):
    parser = argparse.ArgumentParser(prog="python -m aios.mcp.server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    transport = parser.add_mutually_exclusive_group(required=True)
    transport.add_argument("--stdio", action="store_true")
    transport.add_argument("--http", action="store_true")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--tools", default=",".join(SERVED_OVER_MCP),
                        type=lambda value: [n.strip() for n in value.split(",") if n.strip()],
                        help="comma-separated, of: " + ", ".join(TOOLS.factories))
    args = parser.parse_args(argv)
    unknown = [name for name in args.tools if name not in TOOLS.factories]
    if unknown:
        parser.error(f"unknown tools {unknown}; choose from {', '.join(TOOLS.factories)}")
    return args


if __name__ == "__main__":
    main()
