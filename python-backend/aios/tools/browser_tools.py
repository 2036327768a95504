"""The agent's browser: a page that lives for the run (or the conversation), driven by
element refs from an accessibility snapshot, the way Playwright's MCP server does it. Every
tool is one action of the run's browser sandbox (aios.tools.run_browser); the page's traffic
goes through the manager's guard proxy, and actions that send the user's data out ask first
(aios.approvals)."""

import base64
import functools
import json
from dataclasses import dataclass, field
from typing import Callable, Optional

from ..approvals.taint import check_navigation
from ..deps import Deps
from ..files.reader import image_part
from ..net.guard import AddressGuard
from ..sandbox.client import BrowserActionError
from .base import ToolContext, ToolError, ToolOutput
from .run_browser import NOTE, RunBrowser
from .run_code import ARTIFACTS

HINTS = {
    "stale_ref": "take a new browser_snapshot and use its refs",
    "not_found": "take a new browser_snapshot to see what the page has now",
    "refused": "the browser reaches only public addresses (or hosts the operator allowed)",
}
REF = {"type": "string", "description": "an element's ref from the latest browser_snapshot, "
                                        "e.g. e12"}


def _schema(required: tuple = (), **properties) -> dict:
    return {"type": "object", "properties": properties, "required": list(required),
            "additionalProperties": False}


@dataclass(frozen=True)
class BrowserAction:
    """One tool: its name for the model, the action it sends, and what it needs."""
    name: str
    action: str
    description: str
    parameters: dict
    submits: bool = False  # may submit a form: asks first (`<name>.submit`)
    checks: tuple[Callable[[dict], None], ...] = field(default=())


def _need(key: str, kind: type, what: str) -> Callable[[dict], None]:
    def check(arguments: dict) -> None:
        value = arguments.get(key)
        if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
            raise ToolError(f"{key} must be {what}")
    return check


ACTIONS = [
    BrowserAction(
        "browser_navigate", "navigate",
        "Open a URL in the browser's current tab (the page stays for the next browser_* "
        "calls). Returns the final URL, title and HTTP status; then use browser_snapshot.",
        _schema(("url",), url={"type": "string", "description": "an http(s) URL"}),
        checks=(_need("url", str, "an http:// or https:// URL"),)),
    BrowserAction(
        "browser_snapshot", "snapshot",
        "The current page as an accessibility tree: roles, names and text, with a ref "
        "(e.g. [ref=e12]) on each element you can act on. Refs hold until the page changes.",
        _schema()),
    BrowserAction(
        "browser_click", "click", "Click the element with this ref.",
        _schema(("ref",), ref=REF), submits=True,
        checks=(_need("ref", str, "a ref from browser_snapshot"),)),
    BrowserAction(
        "browser_type", "type",
        "Type text into the field with this ref (its old text is replaced); submit: true "
        "presses Enter after it.",
        _schema(("ref", "text"), ref=REF, text={"type": "string"},
                submit={"type": "boolean", "description": "press Enter after typing"}),
        checks=(_need("ref", str, "a ref from browser_snapshot"), _need("text", str, "a string"))),
    BrowserAction(
        "browser_select", "select", "Choose options of the select list with this ref.",
        _schema(("ref", "values"), ref=REF, values={
            "type": "array", "items": {"type": "string"},
            "description": "the options' values or labels"}),
        checks=(_need("ref", str, "a ref from browser_snapshot"),
                _need("values", list, "a list of option values or labels"))),
    BrowserAction(
        "browser_press", "press",
        "Press a key in the page (e.g. Enter, Escape, ArrowDown, Control+a).",
        _schema(("key",), key={"type": "string"}), submits=True,
        checks=(_need("key", str, "a key name such as Enter"),)),
    BrowserAction(
        "browser_scroll", "scroll", "Scroll the page down or up (by a screen unless told).",
        _schema(direction={"type": "string", "enum": ["down", "up"]},
                pixels={"type": "integer", "minimum": 1})),
    BrowserAction("browser_back", "back", "Go back to the previous page of the tab.",
                  _schema()),
    BrowserAction(
        "browser_tabs", "tabs",
        "List the tabs (pages the site opened included), switch to one, or close one.",
        _schema(("action",), action={"type": "string", "enum": ["list", "switch", "close"]},
                index={"type": "integer", "minimum": 0}),
        checks=(_need("action", str, "list, switch or close"),)),
    BrowserAction(
        "browser_screenshot", "screenshot",
        "A PNG of the current page: you see it, and the user gets it as a file.",
        _schema(full_page={"type": "boolean"})),
    BrowserAction(
        "browser_download", "download",
        "Click the element with this ref to download the file it offers; the file becomes "
        "one the user gets (an artifact).",
        _schema(("ref",), ref=REF), checks=(_need("ref", str, "a ref from browser_snapshot"),)),
]


class BrowserTool:
    def __init__(self, action: BrowserAction, deps: Deps, run_browser: RunBrowser):
        self.spec = action
        self.name, self.description = action.name, action.description
        self.parameters = action.parameters
        self.run_browser = run_browser
        self.artifacts = deps.artifacts
        self.guard = AddressGuard(deps.settings.browse_allowlist)
        self.timeout_s = deps.settings.browse_timeout_s
        self.max_chars = deps.settings.tool_result_max_chars

    def run(self, arguments: dict, ctx: ToolContext):
        arguments = arguments if isinstance(arguments, dict) else {}
        for check in self.spec.checks:
            check(arguments)
        args = dict(arguments)
        if self.name == "browser_navigate":
            self._may_go(args["url"].strip(), ctx)
        if self.name == "browser_snapshot":
            args["max_chars"] = self.max_chars
        result = self._act(args, ctx)
        return self._present(result, ctx)

    def _may_go(self, url: str, ctx: ToolContext) -> None:
        verdict = self.guard.check(url)
        if not verdict:
            raise ToolError(f"{verdict.reason}; {HINTS['refused']}")
        check_navigation(ctx, self.name, url)

    def _act(self, args: dict, ctx: ToolContext) -> dict:
        action = self.spec.action
        if self.spec.submits:
            args["guard_submit"] = True
        try:
            return self.run_browser.act(ctx, action, args, self.timeout_s)
        except BrowserActionError as exc:
            if exc.code != "needs_approval":
                raise _tool_error(exc) from None
            ctx.approve(f"{self.name}.submit", str(exc), args)  # raises if not allowed
        try:
            return self.run_browser.act(ctx, action, dict(args, guard_submit=False),
                                        self.timeout_s)
        except BrowserActionError as exc:
            raise _tool_error(exc) from None

    def _present(self, result: dict, ctx: ToolContext):
        if ctx.state.get(NOTE):
            result["note"] = ctx.state.pop(NOTE)
        if self.name == "browser_screenshot":
            data = base64.b64decode(result.pop("png_base64"))
            artifact = self._publish(ctx, "screenshot.png", data, "image/png")
            result["screenshot"] = artifact
            return ToolOutput(json.dumps(result), [image_part(artifact["name"], "image/png",
                                                              data)], result)
        if self.name == "browser_download":
            data = base64.b64decode(result.pop("data_base64"))
            result["artifact"] = self._publish(ctx, result.get("name") or "download", data,
                                               result.get("mime") or "application/octet-stream")
        return result

    def _publish(self, ctx: ToolContext, name: str, data: bytes, mime: str) -> dict:
        return publish(ctx, self.artifacts, name, data, mime)


def publish(ctx: ToolContext, store, name: str, data: bytes, mime: str) -> dict:
    """A file the browser gave back becomes one of the task's artifacts, announced."""
    public = store.save(ctx.task_id, name, data, mime).public(ctx.task_id)
    ctx.emit("artifact", public)
    ctx.state.setdefault(ARTIFACTS, []).append(public)
    return public


def _tool_error(exc: BrowserActionError) -> ToolError:
    hint = HINTS.get(exc.code)
    return ToolError(f"{exc}; {hint}" if hint and hint not in str(exc) else str(exc))


BY_NAME = {action.name: action for action in ACTIONS}


def make_browser_tool(name: str, deps: Deps, run_browser: Optional[RunBrowser] = None):
    return BrowserTool(BY_NAME[name], deps, run_browser or RunBrowser(deps))


def __getattr__(attribute: str):
    """make_<action>(deps): the factory aios.tools.registry names for each browser tool."""
    name = attribute.removeprefix("make_")
    if attribute.startswith("make_") and name in BY_NAME:
        return functools.partial(make_browser_tool, name)
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")
