"""Request bodies, and the size checks that answer 413 rather than 422."""

import base64
import binascii
from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import Invalid, TooLarge
from ..languages import LANGUAGES
from ..limits import LimitOverrides
from ..paths import check_relative_path
from ..settings import Settings

OWNER = Field(default="anonymous", pattern=r"^[A-Za-z0-9_.:@-]{1,128}$")


NETWORK = Field(default="none", description="`none`: no network at all; `egress`: HTTP(S) "
                "through the manager's filtering proxy, when the operator allows it")


class Body(BaseModel):
    # Finite numbers only: the body parser takes `Infinity` and `NaN`, which no answer can
    # carry back (JSON has no such numbers).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data):
        # JSON may spell a lone UTF-16 surrogate ("\ud800"): not text, and no UTF-8 for it.
        where = _lone_surrogate(data)
        if where is not None:
            raise ValueError(f"{where or 'the body'}: a lone surrogate (\\ud800-\\udfff) "
                             "is not valid Unicode")
        return data


def _lone_surrogate(value, where: str = "") -> Optional[str]:
    """Where in a parsed JSON value a string or key is not encodable text (the path of
    what holds it, so the answer never carries the surrogate itself); None if nowhere."""
    if isinstance(value, str):
        return where if not _encodable(value) else None
    items = value.items() if isinstance(value, dict) else \
        enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and not _encodable(key):
            return where
        found = _lone_surrogate(item, f"{where}/{key}" if where else str(key))
        if found is not None:
            return found
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


class FileData(Body):
    data_base64: str = Field(description="the file's bytes, base64-encoded")


FileContent = Union[str, FileData]  # text (written as UTF-8) or any bytes


class RunIn(Body):
    language: str = Field(examples=["python"])
    code: str
    stdin: str = ""
    files: dict[str, FileContent] = Field(
        default_factory=dict, description="relative path -> text, or {data_base64}")
    timeout_s: Optional[float] = Field(default=None, gt=0)
    limits: Optional[LimitOverrides] = None
    network: Literal["none", "egress"] = NETWORK
    owner: str = OWNER


class SandboxIn(Body):
    timeout_s: Optional[float] = Field(default=None, gt=0, description="default per exec")
    ttl_s: Optional[float] = Field(default=None, gt=0)
    idle_ttl_s: Optional[float] = Field(default=None, gt=0,
                                        description="destroyed after this long unused")
    limits: Optional[LimitOverrides] = None
    network: Literal["none", "egress"] = NETWORK
    owner: str = OWNER


class ExecIn(Body):
    language: Optional[str] = None
    code: Optional[str] = None
    cmd: Optional[list[str]] = Field(default=None, min_length=1)
    stdin: str = ""
    timeout_s: Optional[float] = Field(default=None, gt=0)
    network: Optional[bool] = Field(default=None, description=(
        "egress sandboxes: attached to their proxy for this exec (true) or not (false); "
        "default: as the previous exec"))

    @model_validator(mode="after")
    def _one_of(self) -> "ExecIn":
        if (self.cmd is None) == (self.code is None):
            raise ValueError("give either `language` and `code`, or `cmd`")
        if self.code is not None and self.language is None:
            raise ValueError("`code` needs a `language`")
        return self


def document_settings(openapi: dict, settings: Settings) -> None:
    """Writes this server's bounds into the request schemas of /openapi.json: the maxima of
    the limits, timeout_s and ttl_s, and the known languages (all refused with 422 past them)."""
    schemas = openapi["components"]["schemas"]

    def bound(model: str, field: str, **keywords) -> None:
        prop = schemas[model]["properties"][field]
        branches = [b for b in prop.get("anyOf", [prop]) if b.get("type") != "null"]
        branches[0].update(keywords)

    for field in LimitOverrides.model_fields:
        bound("LimitOverrides", field, maximum=getattr(settings.maxima, field))
    for model in ("RunIn", "SandboxIn", "ExecIn"):
        bound(model, "timeout_s", maximum=settings.maxima.timeout_s)
    bound("SandboxIn", "ttl_s", maximum=settings.max_session_ttl_s)
    for model in ("RunIn", "ExecIn"):
        bound(model, "language", enum=sorted(LANGUAGES))
    bound("BrowserIn", "ttl_s", maximum=settings.browser_max_ttl_s)
    bound("ActionIn", "timeout_s", maximum=settings.browser_max_action_timeout_s)


def file_bytes(files: dict[str, FileContent]) -> dict[str, bytes]:
    """Each file's bytes; a value that is not base64 is a 422 naming its path."""
    decoded = {}
    for path, content in files.items():
        if isinstance(content, str):
            decoded[path] = content.encode()
            continue
        try:
            decoded[path] = base64.b64decode(content.data_base64, validate=True)
        except (binascii.Error, ValueError):
            raise Invalid(f"files/{path}: data_base64 is not valid base64") from None
    return decoded


def check_sizes(settings: Settings, code: str = "", stdin: str = "",
                files: Optional[dict[str, bytes]] = None, cmd: Optional[list[str]] = None) -> None:
    if len(code.encode()) > settings.max_code_bytes:
        raise TooLarge(f"code is larger than {settings.max_code_bytes} bytes")
    if cmd and sum(len(a.encode()) for a in cmd) > settings.max_code_bytes:
        raise TooLarge(f"cmd is larger than {settings.max_code_bytes} bytes")
    if len(stdin.encode()) > settings.max_stdin_bytes:
        raise TooLarge(f"stdin is larger than {settings.max_stdin_bytes} bytes")
    files = files or {}
    if len(files) > settings.max_files:
        raise TooLarge(f"{len(files)} files; at most {settings.max_files}")
    for path, data in files.items():
        check_relative_path(path)
        if len(data) > settings.max_file_bytes:
            raise TooLarge(f"file {path!r} is larger than {settings.max_file_bytes} bytes")
