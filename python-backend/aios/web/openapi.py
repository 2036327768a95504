"""The OpenAPI 3.1 document of the web's REST API, built from the app's own routes: each view's
`operation` (contract.py) and the pydantic models it validates with (api_models.py)."""

import re
from http import HTTPStatus
from typing import Any, Iterator

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from . import api_models as m
from .contract import Operation

REF = "#/components/schemas/{model}"
PATH_PARAM = re.compile(r"<(?:[a-z]+:)?([A-Za-z_]\w*)>")
SKIPPED_METHODS = {"HEAD", "OPTIONS"}
HEALTH = Operation(  # health.py keeps no contract of its own: it takes nothing
    "Redis, the workers and the sandbox manager, checked side by side within 1 s",
    responses={200: m.Health, 503: m.Health}, public=True)
# A route without @operation still appears, marked, rather than failing the document;
# tests/domain/test_web_openapi.py refuses any such mark
UNDOCUMENTED = Operation("UNDOCUMENTED: this route has no @operation yet")
RETRY_AFTER = {"description": "seconds to wait before trying again",
               "schema": {"type": "integer"}}


def documented_routes(app: Flask) -> Iterator[tuple[str, str, Operation, str]]:
    """(path, method, operation, endpoint) for /health and every route under /api."""
    for rule in app.url_map.iter_rules():
        if rule.rule != "/health" and not rule.rule.startswith("/api/"):
            continue
        view = app.view_functions[rule.endpoint]
        spec = HEALTH if rule.rule == "/health" else getattr(view, "operation", UNDOCUMENTED)
        for method in sorted(rule.methods - SKIPPED_METHODS):
            yield PATH_PARAM.sub(r"{\1}", rule.rule), method.lower(), spec, rule.endpoint


def not_null(schema: dict) -> dict:
    """A query parameter is absent rather than null."""
    branches = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if len(branches) == 1:
        schema = {**{k: v for k, v in schema.items() if k != "anyOf"}, **branches[0]}
    if "default" in schema and schema["default"] is None:
        schema = {k: v for k, v in schema.items() if k != "default"}
    return schema


def parameters(path: str, query: type[BaseModel] | None) -> list[dict]:
    found = [{"name": name, "in": "path", "required": True,
              "schema": {"type": "string", "minLength": 1}}
             for name in re.findall(r"{(\w+)}", path)]
    if query is not None:
        schema = query.model_json_schema(ref_template=REF)
        for name, prop in schema["properties"].items():
            found.append({"name": name, "in": "query", "schema": not_null(prop),
                          "required": name in schema.get("required", []),
                          **({"description": prop["description"]}
                             if "description" in prop else {})})
    return found


def error_response(status: int) -> dict:
    answer = {"description": HTTPStatus(status).phrase,
              "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}}
    if status in (429, 503):
        answer["headers"] = {"Retry-After": RETRY_AFTER}
    if status == 401:
        answer["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return answer


def response(status: int, model: Any, refs: dict) -> dict:
    answer = {"description": HTTPStatus(status).phrase}
    if model == "binary":
        answer["content"] = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
    elif model is not None:
        answer["content"] = {"application/json": {"schema": refs[(model, "serialization")]}}
    return answer


def operation_object(path: str, spec: Operation, body, view_name: str, refs: dict) -> dict:
    found: dict[str, Any] = {"summary": spec.summary, "operationId": view_name,
                             "parameters": parameters(path, spec.query)}
    if spec.description:
        found["description"] = spec.description
    if body is not None:
        found["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": refs[(body, "validation")]}}}
    if spec.form is not None:
        found["requestBody"] = {"required": True, "content": {
            "multipart/form-data": {"schema": refs[(spec.form, "validation")]}}}
    responses = {str(s): response(s, model, refs) for s, model in spec.responses.items()}
    # An empty id leaves a path that another route answers: /api/tasks//cancel is a 405
    errors = spec.error_statuses() + ([405] if "{" in path else [])
    for status in errors:
        responses.setdefault(str(status), error_response(status))
    found["responses"] = responses
    if spec.public:
        found["security"] = []
    return found


def document(app: Flask) -> dict:
    """The OpenAPI 3.1 document; every model's schema once, under components.schemas."""
    routes = [(path, method, spec, endpoint,
               spec.documented_body() if spec.documented_body else spec.body)
              for path, method, spec, endpoint in documented_routes(app)]
    models: set[tuple[type[BaseModel], str]] = {(m.Error, "serialization")}
    for _, _, spec, _, body in routes:
        models |= {(x, "validation") for x in (body, spec.form) if x is not None}
        models |= {(x, "serialization") for x in spec.responses.values()
                   if isinstance(x, type) and issubclass(x, BaseModel)}
    ordered = sorted(models, key=lambda pair: (pair[0].__name__, pair[1]))
    refs, schemas = models_json_schema(ordered, ref_template=REF)
    paths: dict[str, dict] = {}
    for path, method, spec, endpoint, body in routes:
        paths.setdefault(path, {})[method] = operation_object(
            path, spec, body, f"{method}_{endpoint.replace('.', '_')}", refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": "AI-OS web API", "version": "1",
                 "description": "The web's REST API; the prose is docs/api.md. Socket.IO events: "
                                "/api/socketio-schema.json."},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas.get("$defs", {}),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "AIOS_API_TOKEN"}}},
        "security": [{"bearer": []}],
    }

