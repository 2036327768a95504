"""One MCP server's session, owned by one task on the hub's event loop: the SDK's
transports are anyio task groups, which the task that enters them must also leave."""

import asyncio
import logging
import tempfile
import time
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import anyio
import httpx2
from mcp import Client, Implementation, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

from .config import ServerConfig

log = logging.getLogger(__name__)

CLIENT_INFO = Implementation(name="aios", version="1")
MAX_PAGES = 20            # of a tools/list answer
MAX_BACKOFF_S = 600.0     # between restarts of a server that keeps failing
STOP_WAIT_S = 10.0        # a stdio server gets 2 s after stdin closes, then SIGTERM, SIGKILL
CALL_GRACE_S = 5.0        # past the SDK's own request timeout
STDERR_TAIL = 600
LOST = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError, httpx2.TransportError)


class Unavailable(Exception):
    """The server takes no calls: it failed to start, died, or hung."""


@dataclass
class RemoteTool:
    name: str
    description: str
    parameters: dict  # its JSON schema (an object)


class Connection:
    def __init__(self, name: str, config: ServerConfig):
        self.name, self.config = name, config
        self.state, self.error = "new", None  # "ready" | "failed"
        self.tools: list[RemoteTool] = []
        self.failures, self.failed_at = 0, 0.0
        self._client = None
        self._task = None
        self._scope = None
        self._stop = None

    def due(self, retry_after_s: float) -> bool:
        """Whether to (re)connect now: never tried, or failed long enough ago."""
        if self.state != "failed":
            return self.state == "new"
        backoff = min(retry_after_s * 2 ** (self.failures - 1), MAX_BACKOFF_S)
        return time.monotonic() - self.failed_at >= backoff

    async def start(self, timeout_s: float) -> None:
        """Connect and list the tools; a failure is recorded, not raised."""
        await self.stop()
        ready = asyncio.get_running_loop().create_future()
        self._stop, self._scope = asyncio.Event(), None
        self._task = asyncio.create_task(self._own(ready), name=f"mcp-{self.name}")
        try:
            tools = await asyncio.wait_for(asyncio.shield(ready), timeout_s)
        except asyncio.TimeoutError:
            ready.cancel()
            self._abort()
            self._fail(f"no answer within {timeout_s:g} s while connecting")
        except Unavailable as exc:
            self._fail(str(exc))
        else:
            self.tools, self.state, self.error, self.failures = tools, "ready", None, 0

    async def call(self, tool: str, arguments: dict, timeout_s: float):
        client = self._client
        if self.state != "ready" or client is None:
            raise Unavailable(self.error or "not connected")
        try:
            with anyio.fail_after(timeout_s + CALL_GRACE_S):
                return await client.call_tool(tool, arguments, read_timeout_seconds=timeout_s)
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                raise self._lost(client, "the connection closed (did the server exit?)") from None
            if exc.code == REQUEST_TIMEOUT:
                raise self._lost(client, f"{tool} got no answer within {timeout_s:g} s") from None
            raise  # the server answered with an error: it still works
        except TimeoutError:
            raise self._lost(client, f"{tool} got no answer within {timeout_s:g} s") from None
        except LOST as exc:
            raise self._lost(client, describe(exc)) from None

    async def stop(self) -> None:
        task = self._task
        if task is None or task.done():
            return
        self._stop.set()
        if self._client is None:
            self._abort()  # still connecting
        await asyncio.wait({task}, timeout=STOP_WAIT_S)
        if not task.done():
            self._abort()
            await asyncio.wait({task}, timeout=STOP_WAIT_S)

    def _abort(self) -> None:
        if self._scope is not None:
            self._scope.cancel()
        else:
            self._task.cancel()  # not yet in its scope

    def status(self) -> dict:
        return {"name": self.name, "transport": self.config.transport, "state": self.state,
                **({"error": self.error} if self.error else {})}

    async def _own(self, ready: asyncio.Future) -> None:
        """Holds the session open from connect until stop."""
        with tempfile.TemporaryFile() as errlog:
            try:
                with anyio.CancelScope() as self._scope:
                    async with self._session(errlog) as client:
                        tools = await _list_tools(client)
                        if ready.done():
                            return  # start() gave up on it meanwhile
                        self._client = client
                        ready.set_result(tools)
                        await self._stop.wait()
            except Exception as exc:  # noqa: BLE001 - recorded as the server's state
                reason = describe(exc) + _tail(errlog)
                if not ready.done():
                    ready.set_exception(Unavailable(reason))
                elif self._task is asyncio.current_task() and not self._stop.is_set():
                    self._fail(reason)
                else:
                    log.debug("mcp server %s ended: %s", self.name, reason)
            finally:
                self._client = None

    @asynccontextmanager
    async def _session(self, errlog):
        config = self.config
        async with AsyncExitStack() as stack:
            if config.transport == "stdio":
                params = StdioServerParameters(command=config.command, args=config.args,
                                               env=config.env or None, cwd=config.cwd)
                transport = stdio_client(params, errlog=errlog)
            else:
                http = await stack.enter_async_context(httpx2.AsyncClient(
                    headers=config.headers, timeout=httpx2.Timeout(30, read=300)))
                transport = streamable_http_client(config.url, http_client=http)
            yield await stack.enter_async_context(
                Client(transport, cache=None, client_info=CLIENT_INFO))

    def _lost(self, client, reason: str) -> Unavailable:
        if self._client is client:  # not a session started since
            self._fail(reason)
            self._stop.set()
        return Unavailable(reason)

    def _fail(self, reason: str) -> None:
        log.warning("mcp server %s failed: %s", self.name, reason)
        self.state, self.error, self.tools = "failed", reason, []
        self.failures += 1
        self.failed_at = time.monotonic()


async def _list_tools(client: Client) -> list[RemoteTool]:
    tools, cursor = [], None
    for _ in range(MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools += [RemoteTool(t.name, t.description or "", _object_schema(t.input_schema))
                  for t in page.tools]
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _object_schema(schema) -> dict:
    schema = dict(schema or {})
    schema.setdefault("type", "object")
    if schema["type"] == "object":
        schema.setdefault("properties", {})
    return schema


def describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPError):
        return exc.message
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _tail(errlog) -> str:
    errlog.seek(0, 2)
    errlog.seek(max(0, errlog.tell() - STDERR_TAIL))
    text = errlog.read().decode("utf-8", "replace").strip()
    return f"; its stderr ends: {text}" if text else ""
