"""One execution in a sandbox, as a stream of output events ending in a result."""

import asyncio
import base64
from dataclasses import dataclass
from typing import AsyncIterator, Optional

from .channel import ChannelClosed
from .languages import Language
from .limits import Limits, OutputCaps
from .media import media_type
from .sandbox import Sandbox

STREAMS = {1: "stdout", 2: "stderr"}
BACKSTOP_S = 5.0  # extra wait for the supervisor's own deadline before we destroy the sandbox


class SandboxLost(RuntimeError):
    """The sandbox stopped answering; the caller must destroy it."""


class RunnerRefused(ValueError):
    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


@dataclass
class Output:
    stream: str
    text: str


def run_request(limits: Limits, caps: OutputCaps, *, language: Optional[Language] = None,
                code: str = "", cmd: Optional[list[str]] = None, stdin: str = "",
                files: Optional[dict[str, bytes]] = None, timeout_s: Optional[float] = None,
                session: bool = False) -> dict:
    """The supervisor's `run` request. In a session, Python goes to the live interpreter
    and bash keeps its working directory and exports; a `cmd` is always a plain process."""
    request = {"op": "run", "stdin": stdin, "timeout_s": timeout_s or limits.timeout_s,
               "output_limit": limits.output_bytes, "outputs": caps.__dict__,
               "files": {p: base64.b64encode(d).decode() for p, d in (files or {}).items()}}
    if language is not None:
        request.update(argv=language.command(), code=code, filename=language.filename)
        if session and language.session_mode:
            request["mode"] = language.session_mode
    else:
        request["argv"] = cmd
    return request


async def execute(sandbox: Sandbox, request: dict) -> AsyncIterator[Output | dict]:
    """Yields Output chunks as they are produced, then the result dict.

    Closing the iterator early asks the supervisor to stop the run; if it does not
    answer in time, SandboxLost tells the caller to destroy the sandbox."""
    channel = sandbox.channel
    deadline = asyncio.get_running_loop().time() + request["timeout_s"] + BACKSTOP_S
    finished = False
    try:
        await _send(channel, request)
        stdout, stderr, outputs = [], [], []
        while True:
            frame = await _receive_before(channel, deadline)
            if frame["t"] == "o":
                stream = STREAMS[frame["s"]]
                (stdout if stream == "stdout" else stderr).append(frame["d"])
                yield Output(stream, frame["d"])
            elif frame["t"] == "out":
                outputs.append(_output_file(frame))
            elif frame["t"] == "done":
                finished = True
                result = {k: v for k, v in frame.items() if k != "t"}
                yield dict(result, stdout="".join(stdout), stderr="".join(stderr),
                           outputs=outputs)
                return
            elif frame["t"] == "error":
                finished = True
                raise RunnerRefused(frame["code"], frame["message"])
    finally:
        if not finished:
            await asyncio.shield(_stop(sandbox, deadline))


def _output_file(frame: dict) -> dict:
    mime = media_type(base64.b64decode(frame["data"]), frame["name"])
    return {"name": frame["name"], "mime": mime, "size": frame["size"],
            "data_base64": frame["data"]}


async def _send(channel, request: dict) -> None:
    try:
        await channel.send(request)
    except ChannelClosed as exc:
        raise SandboxLost(f"sandbox stopped answering: {exc}") from exc


async def _receive_before(channel, deadline: float) -> dict:
    remaining = deadline - asyncio.get_running_loop().time()
    try:
        return await asyncio.wait_for(channel.receive(), max(remaining, 0.001))
    except (asyncio.TimeoutError, ChannelClosed) as exc:
        raise SandboxLost(f"sandbox stopped answering: {exc or 'timeout'}") from exc


async def _stop(sandbox: Sandbox, deadline: float) -> None:
    """Cancel a run still going and wait for its end, so the sandbox is reusable."""
    try:
        await sandbox.channel.send({"op": "cancel"})
        loop = asyncio.get_running_loop()
        deadline = min(deadline, loop.time() + BACKSTOP_S)
        while (await _receive_before(sandbox.channel, deadline))["t"] not in ("done", "error"):
            pass
    except (SandboxLost, ChannelClosed):
        sandbox.channel.close()  # the owner sees a dead channel and destroys the sandbox


async def request_reply(sandbox: Sandbox, request: dict, timeout_s: float = 30.0) -> dict:
    """A non-run request (files, attest): one reply frame."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    await _send(sandbox.channel, request)
    frame = await _receive_before(sandbox.channel, deadline)
    if frame["t"] == "error":
        raise RunnerRefused(frame["code"], frame["message"])
    return frame
