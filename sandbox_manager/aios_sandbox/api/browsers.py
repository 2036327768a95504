"""Browser sandboxes: create, list, inspect, act, destroy."""

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from ..browsers import describe
from .browser_schemas import ActionIn, ActionOut, BrowserIn, BrowserOut, BrowsersOut
from .responses import JSON_BODY, errors

router = APIRouter(prefix="/v1/browsers", tags=["browsers"])


def _service(request: Request):
    return request.app.state.service.browsers


@router.post("", status_code=201, response_model=BrowserOut, summary="Start a browser",
             responses={**JSON_BODY, **errors(403, 429, 503)})
async def create(body: BrowserIn, request: Request):
    browser = await _service(request).create(body.owner, body.ttl_s, body.idle_ttl_s)
    return describe(browser)


@router.get("", response_model=BrowsersOut, summary="List browsers")
async def list_all(request: Request):
    return {"browsers": [describe(b) for b in _service(request).browsers.values()]}


@router.get("/{browser_id}", response_model=BrowserOut, summary="Inspect a browser",
            responses=errors(404, 422))
async def inspect(browser_id: str, request: Request):
    return describe(_service(request).get(browser_id))


@router.delete("/{browser_id}", status_code=204, summary="Close a browser",
               responses=errors(404, 422))
async def destroy(browser_id: str, request: Request):
    await _service(request).destroy(browser_id)
    return Response(status_code=204)


@router.post("/{browser_id}/actions", response_model=ActionOut,
             summary="Run one action in a browser",
             responses={**JSON_BODY, **errors(404, 409, 503)})
async def act(browser_id: str, body: ActionIn, request: Request):
    outcome = await _service(request).action(browser_id, body.action, body.args,
                                             body.timeout_s)
    return JSONResponse(outcome)  # as the supervisor gave it: a screenshot is not re-validated
