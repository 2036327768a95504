"""Request and response bodies of /v1/browsers."""

from typing import Any, Literal, Optional

from pydantic import BaseModel, Field

from ..browsers import ACTIONS
from .responses import ErrorDetail
from .schemas import OWNER, Body


class BrowserIn(Body):
    ttl_s: Optional[float] = Field(default=None, gt=0, description=(
        "lifetime from creation (default SANDBOX_BROWSER_TTL_S)"))
    idle_ttl_s: Optional[float] = Field(default=None, gt=0, description=(
        "destroyed after this long without an action (default SANDBOX_BROWSER_IDLE_TTL_S)"))
    owner: str = OWNER


class ActionIn(Body):
    action: Literal[ACTIONS]  # type: ignore[valid-type]
    args: dict[str, Any] = Field(default_factory=dict, description=(
        "the action's arguments, e.g. {\"url\"} for navigate, {\"ref\"} for click"))
    timeout_s: Optional[float] = Field(default=None, gt=0, description=(
        "this action's deadline (default SANDBOX_BROWSER_ACTION_TIMEOUT_S)"))


class ChromiumOut(BaseModel):
    version: Optional[str] = None
    chromium_sandbox: Optional[bool] = None


class BrowserOut(BaseModel):
    id: str
    kind: Literal["browser"]
    owner: str
    busy: bool
    created_at: float
    expires_at: float
    idle_ttl_s: Optional[float]
    last_used_at: float
    browser: ChromiumOut


class BrowsersOut(BaseModel):
    browsers: list[BrowserOut]


class ActionOut(BaseModel):
    """`ok` true with the action's `result`, or false with the page's `error`."""
    ok: bool
    result: Optional[dict[str, Any]] = None
    error: Optional[ErrorDetail] = Field(default=None, description=(
        "`code`: invalid, stale_ref, not_found, refused, timeout, too_large, needs_approval, "
        "failed"))

