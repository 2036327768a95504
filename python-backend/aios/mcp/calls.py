"""One MCP call of an AI-OS tool: its own ToolContext, and its result as MCP content."""

import json
import logging
import threading
import uuid
from typing import Optional
from urllib.parse import quote

from mcp_types import (BlobResourceContents, CallToolResult, EmbeddedResource, ImageContent,
                       TextContent)

from ..approvals.policy import Policy
from ..tools.base import ToolContext, ToolError, ToolOutput

log = logging.getLogger("aios.mcp.server")


class OneCall:
    """A fresh ToolContext (task id mcp-<uuid>) whose cleanups run when the call ends. It
    has no approval gate: there is no user to ask here, so what the policy would ask about
    is refused (the MCP client asks its own user before calling, if it does)."""

    def __init__(self, policy: Optional[Policy] = None):
        self._abort = None
        self.ctx = ToolContext(f"mcp-{uuid.uuid4().hex}", self._emit, threading.Event(),
                               self._on_cancel, policy=policy)

    def run(self, tool, arguments: dict):
        try:
            return tool.run(arguments, self.ctx)
        finally:
            for cleanup in reversed(self.ctx.cleanups):
                try:
                    cleanup()
                except Exception:  # noqa: BLE001 - the others still run
                    log.exception("cleanup after %s failed", tool.name)

    def cancel(self) -> None:
        self.ctx.cancelled.set()
        if self._abort is not None:
            self._abort()

    def _on_cancel(self, abort) -> None:
        self._abort = abort
        if self.ctx.cancelled.is_set():
            abort()

    def _emit(self, type_: str, data: dict) -> None:
        log.debug("%s %s: %s", self.ctx.task_id, type_, data)  # no event stream over MCP


def to_result(result) -> CallToolResult:
    if isinstance(result, ToolOutput):
        return CallToolResult(content=[TextContent(text=result.text),
                                       *filter(None, map(_media, result.parts))],
                              structured_content=result.structured)
    if isinstance(result, str):
        return CallToolResult(content=[TextContent(text=result)])
    return CallToolResult(content=[TextContent(text=json.dumps(result))],
                          structured_content=result)


def error_result(name: str, exc: Exception) -> CallToolResult:
    if isinstance(exc, ToolError):
        text = str(exc)
    else:
        log.exception("tool %s failed", name, exc_info=exc)
        text = f"the tool failed unexpectedly: {type(exc).__name__}: {exc}"
    return CallToolResult(content=[TextContent(text=text)], is_error=True)


def _media(part: dict):
    if part["type"] == "image":
        return ImageContent(data=part["data"], mime_type=part["media_type"])
    if part["type"] == "document":
        return EmbeddedResource(resource=BlobResourceContents(
            uri=f"aios:read_file/{quote(part['name'])}", mime_type=part["media_type"],
            blob=part["data"]))
    return None
