"""The `browse` tool: the one-shot read. Opens a URL in a fresh context of the run's browser
sandbox (aios.tools.run_browser: Chromium in a container of its own, no secrets, no user
files) and returns the page's readable text; the interactive page is browser_*'s.

Every request of the page (redirect hops, sub-requests, WebSockets, popups) leaves the
container only through its egress proxy, the address guard of aios.net, which dials only
what it checked; the tool checks the URL first with the worker's own guard (and
AIOS_BROWSE_ALLOWLIST) for a clear, early refusal, and a run that has read the user's data
asks before it sends a URL to a site it has not visited (aios.approvals)."""

import base64

from ..approvals.taint import check_navigation
from ..deps import Deps
from ..net.guard import AddressGuard
from ..sandbox.client import BrowserActionError
from .base import ToolContext, ToolError
from .browser_tools import HINTS, publish
from .run_browser import RunBrowser

HINT = "the browse tool reaches only public addresses (or hosts in AIOS_BROWSE_ALLOWLIST)"


class Browse:
    name = "browse"
    description = ("Open a web page in a headless browser and return its title, readable text, "
                   "final URL and HTTP status; screenshot: true also gives the user a PNG of "
                   "it. Only public http(s) addresses can be reached.")
    parameters = {
        "type": "object",
        "properties": {
            "url": {"type": "string", "description": "an http:// or https:// URL"},
            "screenshot": {"type": "boolean", "description": "also save a PNG of the page"},
        },
        "required": ["url"],
        "additionalProperties": False,
    }

    def __init__(self, deps: Deps, run_browser: RunBrowser):
        settings = deps.settings
        self.run_browser = run_browser
        self.artifacts = deps.artifacts
        self.guard = AddressGuard(settings.browse_allowlist)
        self.timeout_s = settings.browse_timeout_s
        self.max_chars = settings.tool_result_max_chars

    def run(self, arguments: dict, ctx: ToolContext) -> dict:
        url, screenshot = _arguments(arguments)
        verdict = self.guard.check(url)
        if not verdict:
            raise ToolError(f"{verdict.reason}; {HINT}")
        check_navigation(ctx, self.name, url)
        try:
            result = self.run_browser.act(
                ctx, "read", {"url": url, "screenshot": screenshot, "max_chars": self.max_chars},
                self.timeout_s)
        except BrowserActionError as exc:
            hint = HINT if exc.code == "refused" else HINTS.get(exc.code)
            raise ToolError(f"{exc}; {hint}" if hint else str(exc)) from None
        if result.get("png_base64"):
            result["screenshot"] = publish(ctx, self.artifacts, "page.png",
                                           base64.b64decode(result.pop("png_base64")),
                                           "image/png")
        return result


def make_browse(deps: Deps) -> Browse:
    return Browse(deps, RunBrowser(deps))


def _arguments(arguments: dict) -> tuple[str, bool]:
    url, screenshot = arguments.get("url"), arguments.get("screenshot", False)
    if not isinstance(url, str) or not url.strip():
        raise ToolError("browse needs a url (a non-empty string)")
    if not isinstance(screenshot, bool):
        raise ToolError("screenshot must be true or false")
    return url.strip(), screenshot
