"""Session sandboxes: create, list, inspect, exec, files, destroy."""

from fastapi import APIRouter, Query, Request, Response

from ..errors import Invalid, TooLarge
from ..execution import run_request
from ..limits import LimitExceeded
from ..paths import check_relative_path
from .runs import language_or_422, limits_or_422
from .responses import JSON_BODY, NDJSON, errors
from .schemas import ExecIn, SandboxIn, check_sizes
from .streaming import respond

router = APIRouter(prefix="/v1/sandboxes", tags=["sandboxes"])
PATH = Query(description="file path relative to the sandbox home", max_length=1024)
BYTES = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
RAW_BODY = {"requestBody": {"description": "the file's bytes, any bytes", "content": BYTES}}
RAW_FILE = {200: {"description": "the file's bytes", "content": BYTES}}


@router.post("", status_code=201, summary="Create a session sandbox",
             responses={**JSON_BODY, **errors(403, 429, 503)})
async def create(body: SandboxIn, request: Request):
    settings = request.app.state.settings
    limits = limits_or_422(settings, body.limits, body.timeout_s)
    sandbox = await request.app.state.service.create_session(limits, body.ttl_s, body.owner,
                                                             body.network, body.idle_ttl_s)
    return sandbox.describe()


@router.get("", summary="List session sandboxes")
async def list_all(request: Request):
    return {"sandboxes": [s.describe() for s in request.app.state.service.sessions.values()]}


@router.get("/{sandbox_id}", summary="Inspect a session sandbox",
            responses=errors(404, 422))
async def inspect(sandbox_id: str, request: Request):
    return request.app.state.service.get(sandbox_id).describe()


@router.delete("/{sandbox_id}", status_code=204, summary="Destroy a session sandbox",
               responses=errors(404, 422))
async def destroy(sandbox_id: str, request: Request):
    await request.app.state.service.destroy(sandbox_id)
    return Response(status_code=204)


@router.post("/{sandbox_id}/exec", summary="Run code or a command in a session sandbox",
             responses={**NDJSON, **JSON_BODY, **errors(404, 409, 429, 503)})
async def exec_in(sandbox_id: str, body: ExecIn, request: Request, stream: bool = False):
    settings = request.app.state.settings
    service = request.app.state.service
    sandbox = service.get(sandbox_id)
    check_sizes(settings, code=body.code or "", stdin=body.stdin, cmd=body.cmd)
    timeout_s = body.timeout_s or sandbox.limits.timeout_s
    if timeout_s > settings.maxima.timeout_s:
        raise Invalid(str(LimitExceeded({"timeout_s": settings.maxima.timeout_s})))
    language = language_or_422(body.language) if body.code is not None else None
    run = run_request(sandbox.limits, settings.output_caps, language=language,
                      code=body.code or "", cmd=body.cmd, stdin=body.stdin, timeout_s=timeout_s,
                      session=True)
    return await respond(request, service.exec(sandbox_id, run, body.network), stream)


@router.post("/{sandbox_id}/reset", summary="Restart the live interpreter (files stay)",
             responses=errors(404, 409, 422, 503))
async def reset(sandbox_id: str, request: Request):
    await request.app.state.service.reset(sandbox_id)
    return request.app.state.service.get(sandbox_id).describe()


@router.put("/{sandbox_id}/files", status_code=204, summary="Upload one file (raw body)",
            responses=errors(400, 404, 409, 422, 503), openapi_extra=RAW_BODY)
async def upload(sandbox_id: str, request: Request, path: str = PATH):
    service = request.app.state.service
    service.get(sandbox_id)
    check_relative_path(path)
    limit = request.app.state.settings.max_file_bytes
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise TooLarge(f"file is larger than {limit} bytes")
    await service.put_file(sandbox_id, path, bytes(data))
    return Response(status_code=204)


@router.get("/{sandbox_id}/files", summary="Download one file (raw body)",
            response_class=Response, responses={**RAW_FILE, **errors(400, 404, 409, 422, 503)})
async def download(sandbox_id: str, request: Request, path: str = PATH):
    check_relative_path(path)
    data = await request.app.state.service.get_file(sandbox_id, path)
    return Response(data, media_type="application/octet-stream")
