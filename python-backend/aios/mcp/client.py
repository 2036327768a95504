"""The MCP hub of a worker process: sessions with the configured servers on one background
event loop (made on first use, so never before a fork), their tools as agent tools named
`mcp__<server>__<tool>`, and calls from the synchronous agent loop."""

import asyncio
import concurrent.futures
import hashlib
import json
import logging
import os
import re
import threading
from typing import Optional

from mcp import MCPError

from ..tools.base import ToolContext, ToolError
from .config import McpConfig
from .connection import CALL_GRACE_S, STOP_WAIT_S, Connection, RemoteTool, Unavailable

log = logging.getLogger(__name__)


class McpHub:
    """Thread-safe. A server that fails (at start, hung, died) is reported and retried on a
    later use, at most every retry_after_s (doubling while it keeps failing)."""

    def __init__(self, config: McpConfig, *, call_timeout_s: float = 60.0,
                 connect_timeout_s: float = 30.0, retry_after_s: float = 30.0,
                 max_result_chars: int = 20_000):
        self.config = config
        self.call_timeout_s = call_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.retry_after_s = retry_after_s
        self.max_result_chars = max_result_chars
        self._lock = threading.Lock()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._pid: Optional[int] = None
        self._connections: dict[str, Connection] = {}

    def status(self) -> list[dict]:
        """Each server: name, transport, state ("ready" | "failed"), error?, tools."""
        _, connections = self._refresh()
        return [dict(c.status(), tools=[{"name": t.name, "agent_name": tool_name(c.name, t.name),
                                         "description": t.description} for t in c.tools])
                for c in connections.values()]

    def tools(self) -> list["McpTool"]:
        """The tools of every ready server."""
        _, connections = self._refresh()
        tools, names = [], set()
        for connection in connections.values():
            if connection.state == "ready":
                for remote in connection.tools:
                    tool = McpTool(self, connection.name, remote)
                    if tool.name in names:  # two tool names the same once sanitized
                        tool.name = tool_name(connection.name, remote.name, hashed=True)
                    names.add(tool.name)
                    tools.append(tool)
        return tools

    def call(self, server: str, tool: str, arguments: dict,
             ctx: Optional[ToolContext] = None, timeout_s: Optional[float] = None) -> str:
        """The tool's text; a ToolError when it fails or its server is not available."""
        loop, connections = self._refresh(only=server)
        connection = connections.get(server)
        if connection is None:
            raise ToolError(f"there is no mcp server {server!r}")
        timeout_s = timeout_s or self.call_timeout_s
        future = asyncio.run_coroutine_threadsafe(connection.call(tool, arguments, timeout_s), loop)
        if ctx is not None:
            ctx.on_cancel(future.cancel)
        try:
            result = future.result(timeout_s + 2 * CALL_GRACE_S)
        except concurrent.futures.CancelledError:
            raise ToolError(f"the call to {tool} was cancelled") from None
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise ToolError(f"mcp server {server}: {tool} timed out") from None
        except Unavailable as exc:
            raise ToolError(f"mcp server {server} is not available: {exc}") from None
        except MCPError as exc:
            raise ToolError(f"mcp server {server} refused the call to {tool}: {exc}") from None
        return result_text(result, self.max_result_chars)

    def close(self) -> None:
        """Ends every session (stdio servers are stopped); a later use starts again."""
        with self._lock:
            loop, thread, connections = self._loop, self._thread, list(self._connections.values())
            self._loop, self._thread, self._connections = None, None, {}
            if loop is None or self._pid != os.getpid():
                return
            stopping = asyncio.run_coroutine_threadsafe(_stop_all(connections), loop)
            try:
                stopping.result(2 * STOP_WAIT_S + 5)
            except concurrent.futures.TimeoutError:
                log.warning("mcp: some servers did not stop in time")
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)

    def _refresh(self, only: Optional[str] = None) -> tuple:
        """Starts the loop on first use and (re)connects the servers that are due; returns
        the loop and the connections."""
        with self._lock:
            if not self._ensure_loop():
                return None, {}
            due = [c for name, c in self._connections.items()
                   if (only is None or name == only) and c.due(self.retry_after_s)]
            if due:
                starting = asyncio.run_coroutine_threadsafe(
                    _start_all(due, self.connect_timeout_s), self._loop)
                try:
                    starting.result(self.connect_timeout_s + 2 * STOP_WAIT_S + 5)
                except concurrent.futures.TimeoutError:  # each start is bounded: not expected
                    log.error("mcp: connecting %s did not end", [c.name for c in due])
            return self._loop, dict(self._connections)

    def _ensure_loop(self) -> bool:
        if self._loop is not None and self._pid == os.getpid():
            return True
        if not self.config.servers:
            return False
        # First use, or first use in a forked child (the parent's loop thread is not here)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=_run_loop, args=(self._loop,), daemon=True,
                                        name="mcp-hub")
        self._thread.start()
        self._pid = os.getpid()
        self._connections = {name: Connection(name, server)
                             for name, server in self.config.servers.items()}
        return True


class McpTool:
    """One tool of an MCP server, as the agent sees it."""

    def __init__(self, hub: McpHub, server: str, remote: RemoteTool):
        self.hub, self.server, self.remote = hub, server, remote
        self.name = tool_name(server, remote.name)
        self.description = remote.description or f"{remote.name} (MCP server {server})"
        self.parameters = remote.parameters

    def run(self, arguments: dict, ctx: ToolContext) -> str:
        return self.hub.call(self.server, self.remote.name, arguments, ctx)


def tool_name(server: str, tool: str, hashed: bool = False) -> str:
    """mcp__<server>__<tool>, within what providers accept (^[A-Za-z0-9_-]{1,64}$)."""
    name = f"mcp__{server}__{re.sub(r'[^A-Za-z0-9_-]', '_', tool)}"
    if hashed or len(name) > 64:
        name = name[:57] + "_" + hashlib.sha256(tool.encode()).hexdigest()[:6]
    return name


def result_text(result, max_chars: int) -> str:
    """The text parts joined, a note for each other part; isError raises ToolError."""
    parts = [_part_text(block) for block in result.content]
    if not parts and result.structured_content is not None:
        parts = [json.dumps(result.structured_content)]
    text = "\n".join(parts)
    if len(text) > max_chars:
        text = text[:max_chars] + f"\n[... cut at {max_chars} characters]"
    if result.is_error:
        raise ToolError(text or "the tool failed (no message)")
    return text


def _part_text(block) -> str:
    if block.type == "text":
        return block.text
    if block.type in ("image", "audio"):
        return f"[the tool returned {block.type} ({block.mime_type}), not shown here]"
    if block.type == "resource":
        text = getattr(block.resource, "text", None)
        return text if text is not None else f"[binary resource {block.resource.uri}]"
    return f"[resource {getattr(block, 'uri', '')}]"  # a resource link


async def _start_all(connections: list[Connection], timeout_s: float) -> None:
    await asyncio.gather(*(c.start(timeout_s) for c in connections))


async def _stop_all(connections: list[Connection]) -> None:
    await asyncio.gather(*(c.stop() for c in connections))


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        try:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
