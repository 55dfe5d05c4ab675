"""Every answer of the OpenAPI document is made from the marshmallow reply schema the gateway
dumps that answer through (``@route(reply=...)``), and every error from ``ErrorSchema``:
nothing hand-written is left, so the document cannot say more or less than what is sent.
The integration tests check the other half: every real answer they see validates against
its documented schema (tests/integration/test_gateway_flow.py ``Api``, tests/support.py
``check_reply``), and the gateway itself refuses, under ``GATEWAY_CHECK_REPLIES``, to send
an answer its schema does not describe."""

import inspect
from types import SimpleNamespace

import jsonschema
import pytest
from marshmallow import Schema, fields

from services.gateway import openapi, web
from services.gateway import schemas as gateway_schemas
from services.gateway.auth import PUBLIC
from services.gateway.errors import ApiError, ErrorSchema
from services.gateway.from_marshmallow import schema_of
from services.gateway.service import GatewayService
from tests.support import _replies


@pytest.fixture(scope="module")
def doc():
    return openapi.document(web.routes_of(GatewayService))


def _ok(op):
    """The content of an operation's one success answer (2xx, or a redirect's 3xx)."""
    (status,) = [s for s in op["responses"] if s[0] in "23"]
    return op["responses"][status].get("content", {})


def test_every_json_answer_is_generated_from_its_reply_schema(doc):
    components = doc["components"]["schemas"]
    routes = web.routes_of(GatewayService)
    assert len(routes) > 50
    for name, route in routes:
        path, _ = openapi.openapi_path(route.url)
        op = doc["paths"][path][route.method.lower()]
        content = _ok(op)
        if 300 <= route.ok < 400:
            assert not content, name  # a redirect: no body
            continue
        if route.ok_content != "application/json":
            # a file, a page, a script, text: no JSON to describe
            assert all(c["schema"] == {"type": "string"} for c in content.values()), name
            continue
        assert isinstance(route.reply, Schema), f"{name}: a JSON answer without a reply schema"
        schema = content["application/json"]["schema"]
        single = type(route.reply)()
        if route.reply.many:
            assert schema["type"] == "array", name
            schema = schema["items"]
        ref = schema["$ref"]
        assert ref == f"#/components/schemas/{type(route.reply).__name__}", name
        assert components[ref.rsplit("/", 1)[1]] == schema_of(single, dump=True), name
    # every component is a valid JSON Schema (2020-12), and one the document uses
    used = str(doc["paths"])
    for key, schema in components.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert f"#/components/schemas/{key}'" in used, f"{key} is used by no operation"


def test_every_api_operation_answers_json_from_a_schema(doc):
    """Under /api every answer is JSON, but for the documents served as files."""
    files = {"application/pdf", "image/jpeg", "application/octet-stream"}
    for path, item in doc["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, op in item.items():
            content = _ok(op)
            assert "application/json" in content or set(content) <= files, (method, path)


def test_every_error_is_the_error_schema(doc):
    assert doc["components"]["schemas"]["Error"] == schema_of(ErrorSchema, dump=True)
    for item in doc["paths"].values():
        for op in item.values():
            for status, answer in op["responses"].items():
                if status.startswith(("4", "5")) and "application/json" in answer["content"]:
                    assert answer["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/Error"}
    error = ApiError("refused", "Closed.", {"session_id": "closed"}, reason="window_closed")
    jsonschema.validate(error.body("cid-12345678"), doc["components"]["schemas"]["Error"])


def test_nothing_hand_written_is_left():
    # the route takes a reply schema only: no JSON Schema of an answer can be given
    params = inspect.signature(web.ApiRoute.__init__).parameters
    assert "reply" in params and "ok_schema" not in params
    # the gateway's JSON Schemas are request bodies (from the services' schemas) and
    # uploads; its own answers are marshmallow schemas
    for name in ("ERROR", "TOKEN", "RESET_STARTED"):
        assert not hasattr(gateway_schemas, name), name


def test_the_replies_checked_in_the_flows_are_the_routes_own():
    """tests/support.py checks the services' answers against the very schemas the routes
    dump them through."""
    replies = set()

    def walk(schema):
        replies.add(type(schema))
        for field in schema.fields.values():
            if isinstance(field, fields.Nested):
                walk(field.schema)

    for _, route in web.routes_of(GatewayService):
        if route.reply is not None:
            walk(route.reply)
    for (service, method), (cls, _) in _replies().items():
        assert cls in replies or any(issubclass(r, cls) for r in replies), (service, method)


class Thing(Schema):
    name = fields.String(required=True)
    size = fields.Integer(required=True, allow_none=True)


def _route(check: bool):
    route = web.ApiRoute("GET", "/x", access=PUBLIC, summary="x", reply=Thing)
    route._gate = SimpleNamespace(check_replies=check)
    return route


def test_an_answer_is_sent_as_its_schema_dumps_it():
    route = _route(check=False)
    assert route._dump({"name": "a", "size": None}, "cid") == {"name": "a", "size": None}
    # a field the schema does not have is not sent (and is logged)
    assert route._dump({"name": "a", "size": 1, "secret": "x"}, "cid") == {"name": "a", "size": 1}
    listed = web.ApiRoute("GET", "/y", access=PUBLIC, summary="y", reply=Thing(many=True))
    listed._gate = SimpleNamespace(check_replies=False)
    assert listed._dump([{"name": "a", "size": 2, "x": 1}], "cid") == [{"name": "a", "size": 2}]


def test_under_check_an_answer_off_its_schema_fails():
    route = _route(check=True)
    assert route._dump({"name": "a", "size": 3}, "cid") == {"name": "a", "size": 3}
    for wrong in ({"name": "a", "size": 1, "secret": "x"}, {"name": "a"},
                  {"name": "a", "size": "many"}):
        with pytest.raises(web.ReplyOffSchema):
            route._dump(wrong, "cid")
