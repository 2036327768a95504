"""The web's machine-readable contract: /api/openapi.json (OpenAPI 3.1, built from the models the
routes validate with) and /api/socketio-schema.json, through Flask's test_client on a real
redis-server. Schemathesis against a real gunicorn: tests/integration/test_web_schemathesis.py."""

import jsonschema
import pytest
import schemathesis
from jsonschema.validators import Draft202012Validator
from schemathesis.specs.openapi.definitions import OPENAPI_31

from aios.kinds import KINDS
from aios.web import openapi
from tests.domain.test_web_app import TOKEN, app, auth, client, json_error  # noqa: F401

@pytest.fixture
def document(client):  # noqa: F811 - the fixture imported above
    response = client.get("/api/openapi.json", headers=auth())
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def test_the_documents_need_the_token(client):  # noqa: F811
    for path in ("/api/openapi.json", "/api/socketio-schema.json"):
        json_error(client.get(path), 401, "unauthorized")


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    jsonschema.validate(document, OPENAPI_31)  # the structure: the meta-schema of OAS 3.1
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)  # each model's JSON Schema
    assert refs(document) <= {f"#/components/schemas/{name}"
                              for name in document["components"]["schemas"]}
    operations = list(schemathesis.openapi.from_dict(document).get_all_operations())
    assert len(operations) >= 15 and all(op.ok() for op in operations)


def refs(node) -> set[str]:
    if isinstance(node, dict):
        return {node["$ref"]} if "$ref" in node else set().union(*map(refs, node.values()))
    if isinstance(node, list):
        return set().union(*map(refs, node))
    return set()


def test_every_api_route_is_documented(app, document):  # noqa: F811
    routes = {(rule.rule, method) for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/api/") or rule.rule == "/health"
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method.upper()) for path, item in document["paths"].items()
                  for method in item}
    as_rules = {(path.replace("{name}", "<path:name>").replace("{", "<").replace("}", ">"),
                 method) for path, method in documented}
    assert as_rules == routes
    assert len(routes) >= 15
    undocumented = [(method, path) for path, item in document["paths"].items()
                    for method, op in item.items() if op["summary"].startswith("UNDOCUMENTED")]
    assert undocumented == [], "add @operation(...) (aios/web/contract.py) to these routes"


def test_a_route_without_its_contract_is_marked_not_hidden(app):  # noqa: F811
    app.add_url_rule("/api/extra", "extra", lambda: "")
    with app.app_context():
        extra = openapi.document(app)["paths"]["/api/extra"]["get"]
    assert extra["summary"].startswith("UNDOCUMENTED")


def test_every_operation_documents_its_errors_in_the_error_shape(document):
    error = {"$ref": "#/components/schemas/Error"}
    for path, item in document["paths"].items():
        for method, op in item.items():
            responses = op["responses"]
            if path != "/health":
                assert op.get("security") is None and "401" in responses, (method, path)
            for status, answer in responses.items():
                if int(status) >= 400 and path != "/health":
                    assert answer["content"]["application/json"]["schema"] == error
            if "503" in responses and path != "/health":
                assert "Retry-After" in responses["503"]["headers"], (method, path)
            if "requestBody" in op and "application/json" in op["requestBody"]["content"]:
                assert {"400", "413", "415", "422"} <= set(responses), (method, path)
    health = document["paths"]["/health"]["get"]
    assert health["security"] == [] and set(health["responses"]) == {"200", "503"}


def test_the_submit_body_follows_the_kinds(document):
    body = document["paths"]["/api/tasks"]["post"]["requestBody"]["content"]
    schemas = document["components"]["schemas"]
    submission = schemas[body["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert submission["discriminator"]["propertyName"] == "kind"
    assert set(submission["discriminator"]["mapping"]) == set(KINDS)
    for kind, ref in submission["discriminator"]["mapping"].items():
        variant = schemas[ref.rsplit("/", 1)[1]]
        input_model = KINDS[kind].input.__name__
        assert variant["properties"]["input"] == {"$ref": f"#/components/schemas/{input_model}"}
        assert variant["additionalProperties"] is False


@pytest.mark.parametrize("method, path, kwargs, status, code, named", [
    ("GET", "/api/tasks", {"query_string": {"limit": "many"}}, 400, "bad_request", "limit"),
    ("GET", "/api/tasks", {"query_string": {"limit": 0}}, 422, "invalid_request", "limit"),
    ("GET", "/api/tasks", {"query_string": {"status": "done"}}, 422, "invalid_request",
     "status"),
    ("GET", "/api/sessions", {"query_string": {"limit": 501}}, 422, "invalid_request",
     "limit"),
    ("GET", "/api/tasks/0123456789abcdef/events", {"query_string": {"after": "x"}}, 400,
     "bad_request", "after"),
    ("GET", "/api/tasks/0123456789abcdef/events", {"query_string": {"limit": 10001}}, 422,
     "invalid_request", "limit"),
    ("GET", "/api/tasks/0123456789abcdef/events", {"query_string": {"after": 2 ** 70}}, 422,
     "invalid_request", "after"),  # found by schemathesis: Redis refused it, a 503
    ("POST", "/api/tasks", {"json": {"kind": "echo", "input": {"text": "x"}, "a": 1, "b": 2}},
     422, "invalid_request", "unknown fields: a, b"),
    ("POST", "/api/tasks", {"json": ["echo"]}, 422, "invalid_request", "JSON object"),
    ("POST", "/api/tasks", {"json": {"kind": {}, "input": {}}}, 422, "invalid_request",
     "unknown task kind"),  # found by schemathesis: was a 500
    ("POST", "/api/tasks/0123456789abcdef/approvals/call-1", {"json": {"approved": "yes"}},
     422, "invalid_request", "approved"),
    ("POST", "/api/tasks/0123456789abcdef/approvals/call-1",
     {"json": {"approved": True, "note": "n" * 2001}}, 422, "invalid_request", "note"),
    ("POST", "/api/tasks/0123456789abcdef/approvals/call-1", {"json": {"approved": True}},
     404, "not_found", "0123456789abcdef"),
    ("POST", "/api/tasks/0123456789abcdef/approvals/call-1", {"data": "x"}, 415,
     "unsupported_media_type", "Content-Type"),
])
def test_validation_errors_keep_the_error_shape(client, method, path, kwargs, status,  # noqa: F811
                                                code, named):
    message = json_error(client.open(path, method=method, headers=auth(), **kwargs),
                         status, code)
    assert named in message


def test_the_socketio_schema_is_json_schema_of_every_event(client):  # noqa: F811
    """Its acks and events against a real server: tests/integration/test_web_schemathesis.py."""
    response = client.get("/api/socketio-schema.json", headers=auth())
    assert response.status_code == 200
    schema = response.get_json()
    Draft202012Validator.check_schema(schema)
    assert set(schema["clientToServer"]) == {"connect", "task:submit", "task:subscribe",
                                             "task:cancel", "task:approve", "ping"}
    assert set(schema["serverToClient"]) == {"task:event"}
    assert refs(schema) <= {f"#/$defs/{name}" for name in schema["$defs"]}
    event = Draft202012Validator({**schema["serverToClient"]["task:event"]["data"],
                                  "$defs": schema["$defs"]})
    event.validate({"task_id": "t" * 8, "seq": 1, "type": "status", "ts": 1.0,
                    "data": {"status": "queued"}})
    assert not event.is_valid({"task_id": "t" * 8, "seq": 1, "type": "status", "ts": 1.0,
                               "data": {"text": "x"}})
