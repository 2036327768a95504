"""The `browse` tool: open a URL in headless Chromium, return the page's readable text.

The address guard applies to every request of the page, in two layers: a route handler on the
context checks each request Playwright intercepts (top-level navigation, images, scripts,
fetch/XHR, iframes; WebSockets through route_web_socket) and aborts refused ones with a clear
reason; and every connection Chromium opens goes through a per-call GuardProxy, which checks
again what Playwright's routes never see (redirect hops, workers, WebSockets the page's shim
misses) and dials only the addresses it checked, so DNS rebinding cannot move a connection to
another address; Chromium itself resolves no name (the proxy does). What remains: the route
layer decides on its own lookup, which may differ from the proxy's (the proxy's wins: it is
the one that connects); allowlisted names are dialled by name, unchecked; WebRTC's UDP is
turned off by a launch flag rather than guarded."""

import hashlib
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Optional
from urllib.parse import urldefrag, urlsplit

from ..deps import Deps
from ..net.guard import AddressGuard
from ..net.proxy import REFUSED_HEADER, GuardProxy
from ..settings import PROJECT_TMP
from .base import ToolContext, ToolError
from .browser import BrowserUnavailable

HINT = "the browse tool reaches only public addresses (or hosts in AIOS_BROWSE_ALLOWLIST)"
GRACE_S = 15.0  # past the page timeout: reading the page, the screenshot, closing
SKIPPED_WITHOUT_SCREENSHOT = {"image", "media", "font"}
READABLE_JS = """() => {
  const main = document.querySelector('main, article, [role=main]');
  const root = main && main.innerText.trim().length > 200 ? main : document.body;
  return {title: document.title,
          text: root ? root.innerText : (document.documentElement.textContent || '')};
}"""


class Browse:
    name = "browse"
    description = ("Open a web page in a headless browser and return its title, readable text, "
                   "final URL and HTTP status; screenshot: true also saves a PNG and returns "
                   "its path. Only public http(s) addresses can be reached.")
    parameters = {
        "type": "object",
        "properties": {
            "url": {"type": "string", "description": "an http:// or https:// URL"},
            "screenshot": {"type": "boolean", "description": "also save a PNG of the page"},
        },
        "required": ["url"],
        "additionalProperties": False,
    }

    def __init__(self, settings, browser, guard: Optional[AddressGuard] = None,
                 tmp_root: Path = PROJECT_TMP):
        self.browser = browser
        self.guard = guard or AddressGuard(settings.browse_allowlist)
        self.timeout_s = settings.browse_timeout_s
        self.max_bytes = settings.browse_max_page_bytes
        self.max_chars = settings.tool_result_max_chars
        self.tmp_root = Path(tmp_root)

    def run(self, arguments: dict, ctx: ToolContext) -> dict:
        url, screenshot = _arguments(arguments)
        verdict = self.guard.check(url)
        if not verdict:
            raise ToolError(f"{verdict.reason}; {HINT}")
        if ctx.cancelled.is_set():
            raise ToolError("cancelled")
        visit = Visit(self, url, self._screenshot_path(ctx.task_id) if screenshot else None)
        ctx.on_cancel(visit.abort)
        try:
            return self.browser.run(visit, timeout=self.timeout_s + GRACE_S)
        except TimeoutError as exc:
            raise ToolError(f"timed out loading {url}: {exc}") from None
        except BrowserUnavailable as exc:
            raise ToolError(str(exc)) from None
        finally:
            visit.abort()  # idempotent; stops the proxy if the job never ran or is stuck

    def _screenshot_path(self, task_id: str) -> Path:
        folder = task_id if re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}", task_id) else \
            hashlib.sha256(task_id.encode()).hexdigest()[:16]
        return self.tmp_root / "browse" / folder / f"page-{uuid.uuid4().hex[:12]}.png"


def make_browse(deps: Deps) -> Browse:
    return Browse(deps.settings, deps.browser)


def _arguments(arguments: dict) -> tuple[str, bool]:
    url, screenshot = arguments.get("url"), arguments.get("screenshot", False)
    if not isinstance(url, str) or not url.strip():
        raise ToolError("browse needs a url (a non-empty string)")
    if not isinstance(screenshot, bool):
        raise ToolError("screenshot must be true or false")
    return url.strip(), screenshot


class Visit:
    """One call, run on the browser thread: a fresh context behind a fresh GuardProxy."""

    def __init__(self, tool: Browse, url: str, shot):
        self.tool, self.url, self.shot = tool, url, shot
        self.proxy = GuardProxy(tool.guard, tool.max_bytes, min(tool.timeout_s, 10.0))
        self.refused_navigation = ""  # the route layer's reason for a refused main frame
        self.aborted = threading.Event()
        self.deadline = 0.0
        self._verdicts: dict = {}

    def abort(self) -> None:
        """Cancel from any thread: every connection is cut, so the page's waits end."""
        self.aborted.set()
        self.proxy.close()

    def __call__(self, browser) -> dict:
        from playwright.sync_api import Error
        self.deadline = time.monotonic() + self.tool.timeout_s
        context = browser.new_context(
            proxy={"server": self.proxy.url, "bypass": "<-loopback>"}, accept_downloads=False,
            service_workers="block", viewport={"width": 1280, "height": 800})
        try:
            context.route("**/*", self._on_request)
            context.route_web_socket(re.compile(".*"), self._on_websocket)
            page = context.new_page()
            response = page.goto(self.url, wait_until="domcontentloaded",
                                 timeout=self._left_ms())
            return self._read(page, response)
        except Error as exc:
            raise ToolError(self._explain(exc)) from None
        finally:
            self.proxy.close()
            context.close()

    def _on_request(self, route, request) -> None:
        url = request.url
        skip = self.shot is None and request.resource_type in SKIPPED_WITHOUT_SCREENSHOT
        if self.aborted.is_set() or skip:
            return route.abort("blockedbyclient")
        if url.startswith(("data:", "blob:")):  # content the page already has
            return route.continue_()
        key = urlsplit(url)[:2]  # scheme and host:port: one lookup per origin and call
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._verdicts[key] = self.tool.guard.check(url)
        if verdict:
            return route.continue_()
        if request.is_navigation_request() and request.frame.parent_frame is None:
            self.refused_navigation = self.refused_navigation or verdict.reason
        route.abort("blockedbyclient")

    def _on_websocket(self, ws) -> None:
        http_url = re.sub(r"^ws", "http", ws.url, flags=re.I)
        verdict = self.tool.guard.check(http_url) if not self.aborted.is_set() else None
        if verdict:
            ws.connect_to_server()
        else:
            ws.close(code=1008, reason=(verdict.reason if verdict else "cancelled")[:120])

    def _read(self, page, response) -> dict:
        from playwright.sync_api import Error
        refused = response.header_value(REFUSED_HEADER) if response else None
        if refused:  # the proxy refused a redirect hop of the page itself
            raise ToolError(f"{refused} (redirected from {self.url}); {HINT}")
        try:
            page.wait_for_load_state("load", timeout=self._left_ms())
        except Error:
            pass  # slow images or scripts: read what has loaded
        self._check_landed(page)
        try:
            found = page.locator(":root").evaluate(READABLE_JS, timeout=self._left_ms(5.0))
            if self.shot is not None:
                self.shot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(self.shot), type="png", timeout=self._left_ms(5.0))
        except Error as exc:  # a page that keeps the renderer busy
            raise ToolError(f"could not read {page.url}: {_first_line(exc)}") from None
        self._check_landed(page)  # it may have moved on while being read
        return self._result(page.url, response, found)

    def _check_landed(self, page) -> None:
        if self.refused_navigation:  # the page sent itself (script, meta refresh) elsewhere
            raise ToolError(f"{self.refused_navigation} (navigated to from {self.url}); {HINT}")
        if page.url.startswith("chrome-error:"):
            raise ToolError(f"could not load {self.url}")
        self._check_page_cut(page.url)

    def _result(self, final_url: str, response, found: dict) -> dict:
        text, limit = _readable(found.get("text") or ""), self.tool.max_chars
        if len(text) > limit:
            text = text[:limit] + f"\n[cut: the first {limit} of {len(text)} characters]"
        result = {"url": final_url, "status": response.status if response else None,
                  "title": " ".join((found.get("title") or "").split()), "text": text}
        if self.proxy.cut:
            result["note"] = (f"some resources were larger than {self.tool.max_bytes} bytes "
                              f"and were cut")
        if self.shot is not None:
            result["screenshot"] = str(self.shot)
        return result

    def _check_page_cut(self, final_url: str) -> None:
        origin = urlsplit(final_url)  # a cut tunnel is named host:port, a cut request by URL
        host = f"[{origin.hostname}]" if ":" in (origin.hostname or "") else origin.hostname
        tunnel = f"{host}:{origin.port or (443 if origin.scheme == 'https' else 80)}"
        if any(target in (urldefrag(final_url).url, tunnel) for target in self.proxy.cut):
            raise ToolError(f"the page is larger than {self.tool.max_bytes} bytes "
                            f"(AIOS_BROWSE_MAX_PAGE_BYTES); it was cut: {final_url}")

    def _explain(self, exc: Exception) -> str:
        message = _first_line(exc)
        if self.refused_navigation:
            return f"{self.refused_navigation}; {HINT}"
        if self.aborted.is_set():
            return "cancelled"
        if "Timeout" in type(exc).__name__:
            return f"timed out after {self.tool.timeout_s:g} s loading {self.url}"
        if self.proxy.cut:
            return (f"the page is larger than {self.tool.max_bytes} bytes "
                    f"(AIOS_BROWSE_MAX_PAGE_BYTES); loading {self.url} was cut")
        if self.proxy.refusals and "ERR_TUNNEL_CONNECTION_FAILED" in message:
            return f"{self.proxy.refusals[0][1]} (while loading {self.url}); {HINT}"
        if "Download is starting" in message:
            return f"{self.url} is a download, not a page"
        return f"could not load {self.url}: {message}"

    def _left_ms(self, floor_s: float = 0.5) -> float:
        return max(self.deadline - time.monotonic(), floor_s) * 1000


def _readable(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
