"""The routes' contract: `@operation(...)` records what a route takes and answers (for the
OpenAPI document, openapi.py) and validates its query and body with those same models.

No library does this here without changing behaviour: spectree and flask-pydantic-spec answer
validation errors in their own shape and load their doc pages from a CDN, flask-openapi3 needs
its own app object, and apispec validates nothing."""

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

from flask import request
from pydantic import BaseModel, ValidationError

from .errors import ApiError

# Errors every /api operation may answer, and those of a JSON body
AUTH_ERRORS = (401,)
JSON_BODY_ERRORS = (400, 413, 415, 422)


@dataclass(frozen=True)
class Operation:
    summary: str
    query: Optional[type[BaseModel]] = None
    body: Optional[type[BaseModel]] = None  # application/json, validated
    form: Optional[type[BaseModel]] = None  # multipart/form-data, documented only
    responses: Mapping[int, Any] = field(default_factory=dict)  # status -> model | None | str
    errors: tuple[int, ...] = ()
    description: str = ""
    documented_body: Optional[Callable[[], type[BaseModel]]] = None  # when it says more
    public: bool = False  # answers without the token (only /health)

    def error_statuses(self) -> list[int]:
        implied = (() if self.public else AUTH_ERRORS) + (JSON_BODY_ERRORS if self.body else ()) + (
            (400, 422) if self.query else ())
        return sorted(set(implied + self.errors))


def problems(exc: ValidationError) -> str:
    """A pydantic error as one line: unknown fields named together, then each problem."""
    errors = exc.errors()
    unknown = sorted(".".join(str(p) for p in e["loc"]) for e in errors
                     if e["type"] == "extra_forbidden")
    parts = [f"unknown fields: {', '.join(unknown)}"] if unknown else []
    parts += [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in errors
              if e["type"] != "extra_forbidden"]
    return "; ".join(parts)


def json_body() -> Any:
    if not request.is_json:
        raise ApiError(415, "send a JSON body with Content-Type: application/json")
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "the body is not valid JSON", "malformed_json")
    if not isinstance(body, dict):
        raise ApiError(422, "the body must be a JSON object")
    return body


def parse_query(model: type[BaseModel]) -> BaseModel:
    """400 for a parameter that is not a number at all, 422 for one out of range."""
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        for error in exc.errors():
            if error["type"] in ("int_parsing", "float_parsing"):
                raise ApiError(400, f"query parameter {error['loc'][0]!r} must be an "
                                    "integer") from None
        raise ApiError(422, problems(exc)) from None


def parse_body(model: type[BaseModel], body: Any) -> BaseModel:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ApiError(422, problems(exc)) from None


def operation(summary: str, *, query=None, body=None, form=None, responses=None, errors=(),
              description: str = "", documented_body=None) -> Callable:
    """Records the route's contract on its view (view.operation) and hands the view the
    validated `query` and `body` as keyword arguments. `documented_body` (a function giving
    a model) documents a body that is validated further down, e.g. per task kind."""
    spec = Operation(summary, query, body, form, dict(responses or {}), tuple(errors),
                     description, documented_body)

    def decorate(view):
        @functools.wraps(view)
        def validated(**path):
            if query is not None:
                path["query"] = parse_query(query)
            if body is not None:
                path["body"] = parse_body(body, json_body())
            return view(**path)
        validated.operation = spec
        return validated
    return decorate
