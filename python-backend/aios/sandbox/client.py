"""The worker's client of the sandbox manager: one-shot runs and session sandboxes, with
streamed output."""

import json
import time
from typing import Callable, Optional, Union

import httpx

from ..netutil import shut_down

OnOutput = Callable[[str, str], None]  # (stream, text)
FEATURES_TTL_S = 60.0


class SandboxError(RuntimeError):
    def __init__(self, code: str, message: str, retry_after_s: Optional[float] = None,
                 refused: bool = True, host_failed: bool = False):
        super().__init__(message)
        self.code = code
        self.retry_after_s = retry_after_s  # the manager's Retry-After, when it sent one
        self.refused = refused  # the request was refused as a whole: nothing of it ran
        # the manager could not be reached or failed as a server (5xx): it may be down
        self.host_failed = host_failed

    @property
    def busy(self) -> bool:
        """Refused for being at capacity or unavailable for now: worth asking again."""
        return self.refused and self.code in ("at_capacity", "unavailable")


class BrowserActionError(RuntimeError):
    """The browser did not do the action; `code` says why (stale_ref, refused, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class SandboxClient:
    def __init__(self, base_url: str, token: str, timeout_s: float = 30.0):
        self.http = httpx.Client(base_url=base_url, timeout=httpx.Timeout(timeout_s, read=None),
                                 headers={"Authorization": f"Bearer {token}"})
        self._features = None  # (when asked, the manager's features)

    def run(self, body: dict, on_output: OnOutput, owner: str, register_close=None) -> dict:
        """Streams output to on_output and returns the result. register_close receives a
        function that aborts the run from another thread (the manager then kills it)."""
        return self._streamed("/v1/run", dict(body, owner=owner), on_output, register_close)

    def create_session(self, owner: str, ttl_s: float, timeout_s: float,
                       idle_ttl_s: Optional[float] = None, network: str = "none") -> str:
        """A sandbox whose files and interpreter persist across execs, until destroy(), its
        TTL or idle_ttl_s without use."""
        body = {"owner": owner, "ttl_s": ttl_s, "timeout_s": timeout_s, "network": network}
        if idle_ttl_s:
            body["idle_ttl_s"] = idle_ttl_s
        return self._call("POST", "/v1/sandboxes", 201, json=body).json()["id"]

    def exists(self, sandbox_id: str) -> bool:
        return self._call("GET", f"/v1/sandboxes/{sandbox_id}", (200, 404)).status_code == 200

    def put_file(self, sandbox_id: str, path: str, data: bytes) -> None:
        self._call("PUT", f"/v1/sandboxes/{sandbox_id}/files", 204, params={"path": path},
                   content=data)

    def reset(self, sandbox_id: str) -> None:
        self._call("POST", f"/v1/sandboxes/{sandbox_id}/reset", 200)

    def health(self, timeout_s: float) -> tuple[int, Optional[dict], str]:
        """The manager's /health: (status, body, error); status 0 when it did not answer."""
        try:
            response = self.http.get("/health", timeout=timeout_s)
        except httpx.HTTPError as exc:
            return 0, None, f"{type(exc).__name__}: {exc}"[:300]
        try:
            body = response.json()
        except ValueError:
            body = None
        return response.status_code, body if isinstance(body, dict) else None, ""

    def egress_allowed(self) -> bool:
        """Whether the manager lets sandboxes ask for the network (asked once a minute)."""
        now = time.monotonic()
        if self._features is None or now - self._features[0] > FEATURES_TTL_S:
            try:
                body = self.http.get("/health", timeout=5).json()
            except (httpx.HTTPError, ValueError):
                return False
            self._features = (now, body.get("features") or {})
        return bool(self._features[1].get("egress"))

    def _call(self, method: str, path: str, expected: Union[int, tuple[int, ...]],
              **kwargs) -> httpx.Response:
        """The response when its status is one expected; else a SandboxError saying why."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise unreachable(exc, refused=isinstance(exc, NOT_SENT)) from exc
        if response.status_code not in (expected if isinstance(expected, tuple) else (expected,)):
            raise _error_of(response)
        return response

    def exec(self, sandbox_id: str, body: dict, on_output: OnOutput,
             register_close=None) -> dict:
        return self._streamed(f"/v1/sandboxes/{sandbox_id}/exec", body, on_output,
                              register_close)

    def destroy(self, sandbox_id: str) -> None:
        self._call("DELETE", f"/v1/sandboxes/{sandbox_id}", (204, 404))  # gone already: fine

    # --- browsers: Chromium in a container of its own, driven by actions -------------

    def create_browser(self, owner: str, ttl_s: float,
                       idle_ttl_s: Optional[float] = None) -> dict:
        """A browser sandbox (its description: id, browser version...), until
        destroy_browser(), its TTL or idle_ttl_s without an action."""
        body = {"owner": owner, "ttl_s": ttl_s, **({"idle_ttl_s": idle_ttl_s} if idle_ttl_s
                                                   else {})}
        # Chromium starts before the manager answers: allow for it
        return self._call("POST", "/v1/browsers", 201, json=body, timeout=90).json()

    def browser_exists(self, browser_id: str) -> bool:
        return self._call("GET", f"/v1/browsers/{browser_id}", (200, 404)).status_code == 200

    def browser_action(self, browser_id: str, action: str, args: dict, timeout_s: float,
                       register_close=None) -> dict:
        """The action's result; BrowserActionError when the page refused it (a stale ref, a
        refused navigation...), SandboxError when the manager or the browser failed."""
        request = self.http.build_request(
            "POST", f"/v1/browsers/{browser_id}/actions",
            json={"action": action, "args": args, "timeout_s": timeout_s},
            timeout=httpx.Timeout(30.0, read=timeout_s + 30))
        try:
            response = self.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise unreachable(exc, refused=isinstance(exc, NOT_SENT)) from exc
        try:
            if register_close:
                register_close(lambda: shut_down(response))
            response.read()
        except httpx.HTTPError as exc:
            raise unreachable(exc, refused=False) from exc
        finally:
            response.close()
        if response.status_code != 200:
            raise _error_of(response)
        body = response.json()
        if not body.get("ok"):
            raise BrowserActionError(body["error"]["code"], body["error"]["message"])
        return body["result"]

    def destroy_browser(self, browser_id: str) -> None:
        self._call("DELETE", f"/v1/browsers/{browser_id}", (204, 404))

    def _streamed(self, path: str, body: dict, on_output: OnOutput, register_close) -> dict:
        # The manager answers with its headers once the sandbox is ready and runs the code
        # only then: a connection lost before them lost nothing that ran.
        response = None
        try:
            with self.http.stream("POST", path, params={"stream": "true"},
                                  json=body) as response:
                if register_close:
                    register_close(lambda: shut_down(response))
                if response.status_code != 200:
                    response.read()
                    raise _error_of(response)
                for line in response.iter_lines():
                    event = json.loads(line)
                    if event["type"] in ("stdout", "stderr"):
                        on_output(event["type"], event["text"])
                    elif event["type"] == "result":
                        return event["result"]
                    elif event["type"] == "error":  # in-band: the run had started
                        raise SandboxError(event["error"]["code"], event["error"]["message"],
                                           refused=False)
        except httpx.HTTPError as exc:
            raise unreachable(exc, refused=response is None) from exc
        raise SandboxError("sandbox_lost", "the sandbox manager ended the stream without a result",
                           refused=False, host_failed=True)

    def close(self) -> None:
        self.http.close()


# Failures that show the request never reached the manager
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)


def unreachable(exc: httpx.HTTPError, refused: bool) -> SandboxError:
    return SandboxError("sandbox_unreachable", f"sandbox manager: {exc}", refused=refused,
                        host_failed=True)


def _error_of(response: httpx.Response) -> SandboxError:
    retry_after = response.headers.get("retry-after", "")
    wait = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else None
    failed = response.status_code >= 500 and response.status_code != 503  # 503: its own "busy"
    try:
        error = response.json()["error"]
        return SandboxError(error["code"], f"sandbox manager: {error['message']}", wait,
                            host_failed=failed)
    except (ValueError, KeyError, TypeError):
        return SandboxError("sandbox_error", f"sandbox manager answered {response.status_code}",
                            wait, host_failed=response.status_code >= 500)

