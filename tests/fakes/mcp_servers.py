"""Tiny real MCP servers for the hub's tests, run as their own processes:

  mcp_servers.py stdio               tools add {a, b}, echo_env {name}, pid, fail {message},
                                     sleep {seconds}, die (exits mid-call)
  mcp_servers.py http PORT KEY       the same over streamable HTTP; refuses requests whose
                                     X-Fake-Key header is not KEY (403)
  mcp_servers.py exit-at-start       writes a reason to stderr and exits 1
  mcp_servers.py hang                reads stdin, never answers (not even initialize)

Run as a script (a stdio child gets no PYTHONPATH): it imports only the MCP SDK."""

import os
import sys
import time

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError


def build() -> MCPServer:
    server = MCPServer("fake")

    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> str:
        return str(a + b)

    @server.tool(description="The value of an environment variable of the server.")
    def echo_env(name: str) -> str:
        return os.environ.get(name, "<unset>")

    @server.tool(description="The server's process id.")
    def pid() -> str:
        return str(os.getpid())

    @server.tool(description="Fail the call (isError).")
    def fail(message: str) -> str:
        raise ToolError(message)

    @server.tool(description="Answer after some seconds.")
    def sleep(seconds: float) -> str:
        time.sleep(seconds)
        return "slept"

    @server.tool(description="Exit the server process in the middle of the call.")
    def die() -> str:
        os._exit(1)

    return server


class RequireHeader:
    """ASGI middleware: 403 unless the request carries X-Fake-Key: key."""

    def __init__(self, app, key: str):
        self.app, self.key = app, key.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and dict(scope["headers"]).get(b"x-fake-key") != self.key:
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"bad or missing X-Fake-Key"})
            return
        await self.app(scope, receive, send)


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "stdio":
        build().run("stdio")
    elif mode == "http":
        import uvicorn
        app = RequireHeader(build().streamable_http_app(), argv[2])
        uvicorn.run(app, host="127.0.0.1", port=int(argv[1]), log_level="warning")
    elif mode == "exit-at-start":
        sys.exit("fake: refusing to start (exit-at-start)")
    elif mode == "hang":
        sys.stdin.read()  # until the client closes stdin: never a single answer
    else:
        sys.exit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
