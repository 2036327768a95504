"""The worker's client of the sandbox manager: one-shot runs and session sandboxes, with
streamed output."""

import json
from typing import Callable

import httpx

from ..netutil import shut_down

OnOutput = Callable[[str, str], None]  # (stream, text)


class SandboxError(RuntimeError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class SandboxClient:
    def __init__(self, base_url: str, token: str, timeout_s: float = 30.0):
        self.http = httpx.Client(base_url=base_url, timeout=httpx.Timeout(timeout_s, read=None),
                                 headers={"Authorization": f"Bearer {token}"})

    def run(self, body: dict, on_output: OnOutput, owner: str, register_close=None) -> dict:
        """Streams output to on_output and returns the result. register_close receives a
        function that aborts the run from another thread (the manager then kills it)."""
        return self._streamed("/v1/run", dict(body, owner=owner), on_output, register_close)

    def create_session(self, owner: str, ttl_s: float, timeout_s: float) -> str:
        """A sandbox whose files persist across execs, until destroy() or its TTL."""
        try:
            response = self.http.post("/v1/sandboxes", json={
                "owner": owner, "ttl_s": ttl_s, "timeout_s": timeout_s})
        except httpx.HTTPError as exc:
            raise SandboxError("sandbox_unreachable", f"sandbox manager: {exc}") from exc
        if response.status_code != 201:
            raise _error_of(response)
        return response.json()["id"]

    def exec(self, sandbox_id: str, body: dict, on_output: OnOutput,
             register_close=None) -> dict:
        return self._streamed(f"/v1/sandboxes/{sandbox_id}/exec", body, on_output,
                              register_close)

    def destroy(self, sandbox_id: str) -> None:
        try:
            response = self.http.delete(f"/v1/sandboxes/{sandbox_id}")
        except httpx.HTTPError as exc:
            raise SandboxError("sandbox_unreachable", f"sandbox manager: {exc}") from exc
        if response.status_code not in (204, 404):
            raise _error_of(response)

    def _streamed(self, path: str, body: dict, on_output: OnOutput, register_close) -> dict:
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
                    elif event["type"] == "error":
                        raise SandboxError(event["error"]["code"], event["error"]["message"])
        except httpx.HTTPError as exc:
            raise SandboxError("sandbox_unreachable", f"sandbox manager: {exc}") from exc
        raise SandboxError("sandbox_lost", "the sandbox manager ended the stream without a result")

    def close(self) -> None:
        self.http.close()


def _error_of(response: httpx.Response) -> SandboxError:
    try:
        error = response.json()["error"]
        return SandboxError(error["code"], f"sandbox manager: {error['message']}")
    except (ValueError, KeyError, TypeError):
        return SandboxError("sandbox_error", f"sandbox manager answered {response.status_code}")

