"""Turn a run's event stream into a JSON result, or into NDJSON as it happens."""

import asyncio
import json
from typing import AsyncIterator

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

from ..errors import ServiceError
from ..execution import Output

DISCONNECT_POLL_S = 0.25


async def respond(request: Request, events: AsyncIterator, stream: bool):
    """Errors before the sandbox is ready become HTTP errors; later ones travel in-band."""
    await anext(events)  # the STARTED marker: slot, sandbox and lock are ours now
    if stream:
        return StreamingResponse(_ndjson(events), media_type="application/x-ndjson",
                                 background=BackgroundTask(events.aclose))
    return JSONResponse(await _collect_unless_disconnected(request, events))


async def _ndjson(events: AsyncIterator) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            if isinstance(event, Output):
                line = {"type": event.stream, "text": event.text}
            else:
                line = {"type": "result", "result": event}
            yield (json.dumps(line) + "\n").encode()
    except ServiceError as exc:
        yield (json.dumps({"type": "error", "error": {"code": exc.code,
                                                      "message": exc.message}}) + "\n").encode()
    finally:
        await events.aclose()


async def _last(events: AsyncIterator) -> dict:
    result = None
    async for event in events:
        result = event
    return result


async def _collect_unless_disconnected(request: Request, events: AsyncIterator) -> dict:
    """Run to the end, but stop the run (and free its sandbox) if the client goes away."""
    task = asyncio.ensure_future(_last(events))
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if done:
                return task.result()
            if await request.is_disconnected():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                return {}
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await events.aclose()
