"""POST /v1/run: one-shot execution in a fresh sandbox."""

from fastapi import APIRouter, Request

from ..errors import Invalid
from ..execution import run_request
from ..languages import UnknownLanguage, get_language
from ..limits import LimitExceeded, resolve
from .responses import JSON_BODY, NDJSON, errors
from .schemas import RunIn, check_sizes, file_bytes
from .streaming import respond

router = APIRouter(prefix="/v1", tags=["runs"])


def language_or_422(name: str):
    try:
        return get_language(name)
    except UnknownLanguage as exc:
        raise Invalid(str(exc)) from exc


def limits_or_422(settings, overrides, timeout_s):
    try:
        return resolve(settings.defaults, settings.maxima, overrides, timeout_s)
    except LimitExceeded as exc:
        raise Invalid(str(exc), limits=exc.fields) from exc


@router.post("/run", summary="Run code once in a fresh sandbox",
             responses={**NDJSON, **JSON_BODY, **errors(403, 429, 503)})
async def run_once(body: RunIn, request: Request, stream: bool = False):
    settings = request.app.state.settings
    language = language_or_422(body.language)
    files = file_bytes(body.files)
    check_sizes(settings, code=body.code, stdin=body.stdin, files=files)
    limits = limits_or_422(settings, body.limits, body.timeout_s)
    run = run_request(limits, settings.output_caps, language=language, code=body.code,
                      stdin=body.stdin, files=files)
    events = request.app.state.service.run_once(run, limits, body.owner, body.network)
    return await respond(request, events, stream)
