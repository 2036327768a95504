"""Browser supervisor: PID 1 of every browser container (the aios-browser image).

It starts Chromium (Debian's /usr/bin/chromium) with Playwright's sync API, inside this
container, behind the proxy named by AIOS_BROWSER_PROXY, then serves the agent's actions.
Protocol, as the code sandbox's runner (sandbox_manager/aios_sandbox/protocol.py): one JSON
request per line on stdin, JSON lines on stdout (which Docker multiplexes), diagnostics on
stderr. First frame: `hello` with the attest report and the browser's version and whether
Chromium's own sandbox is on; or `error`/`browser_failed` and exit 1.

Requests, one at a time: {"op":"attest"}; {"op":"action","action":NAME,"args":{},
"timeout_s":N}. Answers: {"t":"attest",...}, {"t":"result","result":{...}} or
{"t":"error","code":CODE,"message":...}; see browser_errors.CODES. A failing action never
ends the supervisor, except when Chromium itself is gone, or an action outruns its timeout
by WATCHDOG_GRACE_S (a page stuck in a script loop): then it exits and the manager, seeing
the stream close, destroys the container.
"""

import ctypes
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, "/opt/aios/browser")  # -I leaves the script's folder off the path

from aios_attest import attest  # noqa: E402
from browser_args import timeout as request_timeout  # noqa: E402
from browser_errors import ActionError, first_line, from_playwright  # noqa: E402
from browser_launch import (LaunchFailed, launch, renderer_pids,  # noqa: E402
                            renderers_sandboxed)

DOWNLOADS = "/tmp/aios-downloads"
RENDERER_KILL_S = 5.0
WATCHDOG_GRACE_S = 15.0
LAUNCH_TIMEOUT_S = 30.0
PR_SET_DUMPABLE = 4
ACTIONS = ("navigate", "snapshot", "click", "type", "select", "press", "scroll", "back",
           "tabs", "screenshot", "download", "read")
VERBS = {"navigate": "opening the page", "snapshot": "the snapshot", "click": "the click",
         "type": "typing", "select": "the selection", "press": "the key press",
         "scroll": "scrolling", "back": "going back", "tabs": "the tab change",
         "screenshot": "the screenshot", "download": "the download", "read": "reading the page"}


class Output:
    """The protocol's stdout, kept apart: fd 1 becomes stderr, so nothing Playwright's
    driver or Chromium print can land in the frames."""

    def __init__(self):
        self._fd = os.dup(1)
        os.dup2(2, 1)
        self._lock = threading.Lock()

    def send(self, frame: dict) -> None:
        data = (json.dumps(frame, separators=(",", ":")) + "\n").encode()
        with self._lock:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]


def log(line: str) -> None:
    sys.stderr.write(f"aios_browser: {line}\n")
    sys.stderr.flush()


class Watchdog:
    """For a call without a timeout of its own (page.evaluate in a page looping forever):
    RENDERER_KILL_S past an action's timeout it kills Chromium's renderers, which ends the
    call with a crash (the tabs are lost, the browser lives on); WATCHDOG_GRACE_S past it,
    if the action is still stuck, it exits the process and the manager sees the stream end."""

    def __init__(self):
        self._timers = []
        self.killed_renderers = False

    def arm(self, timeout_s: float, what: str) -> None:
        self.killed_renderers = False
        self._timers = [threading.Timer(timeout_s + RENDERER_KILL_S, self._kill_renderers),
                        threading.Timer(timeout_s + WATCHDOG_GRACE_S, self._exit, (what,))]
        for timer in self._timers:
            timer.daemon = True
            timer.start()

    def disarm(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers = []

    def _kill_renderers(self) -> None:
        self.killed_renderers = True
        for pid in renderer_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        log("an action is stuck past its timeout: killed the renderers")

    @staticmethod
    def _exit(what: str) -> None:
        log(f"{what} is stuck past its timeout; exiting")
        os._exit(3)


def perform(session, request: dict) -> dict:
    """One action; an error frame for any failure."""
    action = request.get("action")
    if action not in ACTIONS:
        raise ActionError("invalid", f"unknown action {action!r}")
    args = request.get("args")
    args = {} if args is None else args
    if not isinstance(args, dict):
        raise ActionError("invalid", "args must be an object")
    timeout_s = request_timeout(request)
    page = session.begin(timeout_s)
    try:
        if action == "read":
            return session.read(session.browser, args)
        return getattr(session, action)(page, args)
    except ActionError:
        raise
    except Exception as exc:  # noqa: BLE001 - Playwright's errors become error frames
        raise from_playwright(exc, VERBS[action], timeout_s) from None


def serve(session, out: Output) -> int:
    watchdog = Watchdog()
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except ValueError:
            out.send({"t": "error", "code": "invalid", "message": "a request must be one JSON "
                                                                  "object per line"})
            continue
        op = request.get("op")
        if op == "attest":
            out.send({"t": "attest", "attest": attest()})
            continue
        if op != "action":
            out.send({"t": "error", "code": "invalid", "message": f"unknown op {op!r}"})
            continue
        started = time.monotonic()
        try:
            limit = request_timeout(request)
        except ActionError:
            limit = 0.0  # perform() answers it at once
        watchdog.arm(limit, str(request.get("action")))
        try:
            out.send({"t": "result", "result": perform(session, request)})
        except ActionError as exc:
            error = exc
            if watchdog.killed_renderers:
                error = ActionError("timeout", f"the page was stuck in a script past {limit:g} "
                                               "s: its renderer was stopped and the browser's "
                                               "tabs are closed")
            out.send(error.frame())
        except Exception as exc:  # noqa: BLE001 - never a traceback to the manager
            log(f"action failed unexpectedly: {exc!r}")
            out.send({"t": "error", "code": "failed", "message": first_line(str(exc))})
        finally:
            watchdog.disarm()
        log(f"{request.get('action')} {1000 * (time.monotonic() - started):.0f} ms")
        if not session.browser.is_connected():
            log("Chromium is gone; exiting")
            return 1
    return 0


def start(out: Output):
    """Playwright, Chromium and the agent's context; the hello frame."""
    from playwright.sync_api import sync_playwright
    from browser_session import Session

    playwright = sync_playwright().start()
    browser, sandbox = launch(playwright, LAUNCH_TIMEOUT_S)
    session = Session(browser)
    # Measured, not assumed: the renderers of a sandboxed Chromium are in a user namespace
    # of their own. (A launch that asked for the sandbox fails outright without one.)
    measured = renderers_sandboxed() if sandbox else False
    out.send({"t": "hello", "attest": attest(),
              "browser": {"version": browser.version,
                          "chromium_sandbox": sandbox if measured is None else measured}})
    return playwright, session


def main() -> int:
    out = Output()
    ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # no ptrace/proc peeking by pages
    # PID 1 ignores SIGTERM unless it handles it: `docker stop` would wait its whole grace
    # period. Exiting ends Chromium too (the container's PID namespace goes with PID 1).
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    os.makedirs(DOWNLOADS, exist_ok=True)
    try:
        playwright, session = start(out)
    except (LaunchFailed, Exception) as exc:  # noqa: BLE001 - any start failure is reported
        out.send({"t": "error", "code": "browser_failed", "message": first_line(str(exc))})
        return 1
    try:
        return serve(session, out)
    finally:
        try:
            session.browser.close()
            playwright.stop()
        except Exception:  # noqa: BLE001 - exiting anyway
            pass


if __name__ == "__main__":
    sys.exit(main())
