"""The gateway's OpenAPI 3.1 document, built from its routes (``GET /api/openapi.json``).

Each ``@route`` carries its access rule, summary, body and answer; the document is made
from exactly the routes the service declares, so a route cannot exist without being in
it. Request bodies are made from the marshmallow schemas the services load them with,
answers from the reply schemas the gateway dumps them through (``reply=``; each in
``components.schemas`` by its class name) and every error from ``errors.ErrorSchema``.
``x-kaowu-access`` and ``x-kaowu-roles`` name who may call an operation (public operations
have ``security: []``).
"""

from __future__ import annotations

import re

from services.gateway.auth import ROLES
from services.gateway.errors import ErrorSchema
from services.gateway.from_marshmallow import TEXT_PATTERN, schema_of

VERSION = "1.0.0"
_PARAM = re.compile(r"<(?:(?P<conv>\w+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")

_ERROR_TEXT = {
    400: "validation_failed: the input is not valid (fields say which and why)",
    401: "unauthorized: no token, a bad or expired one (or wrong credentials at login)",
    403: "forbidden: signed in, but not allowed to do or see this",
    404: "not_found",
    409: "refused (a rule says no: a window is closed, a wrong state) or conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited (Retry-After says when to try again)",
    500: "internal (logged with the correlation id)",
    503: "unavailable: a service behind the gateway is down or slow",
}




def _text(schema: dict) -> dict:
    """A string parameter's schema with the services' refusal of control characters."""
    if schema.get("type") == "string" and "enum" not in schema and "pattern" not in schema:
        return {**schema, "pattern": TEXT_PATTERN}
    return schema


def openapi_path(rule: str) -> tuple[str, list[dict]]:
    """A werkzeug rule as an OpenAPI path template, with its path parameters."""
    params = []

    def repl(m):
        schema = {"type": "string", "minLength": 1, "pattern": TEXT_PATTERN}
        if m.group("conv") == "any":
            schema = {"type": "string"}
            schema["enum"] = [a.strip().strip("'\"") for a in m.group("args").split(",")]
        elif m.group("conv") == "int":
            schema = {"type": "integer", "minimum": 0}
        params.append({"name": m.group("name"), "in": "path", "required": True,
                       "schema": schema})
        return "{" + m.group("name") + "}"

    return _PARAM.sub(repl, rule), params


def _error_statuses(route) -> list[int]:
    statuses = set(route.errors) | {500}
    if not route.access.public:
        statuses |= {401, 403}
    if route.body is not None or route.uploads:
        statuses |= {400, 413, 415}
    if route.query:
        statuses.add(400)
    return sorted(statuses)


def reply_ref(reply, components: dict) -> dict:
    """A reply schema as a ``$ref`` to ``components.schemas`` (added there by its class
    name; two different schemas of one name are refused)."""
    name = type(reply).__name__
    generated = schema_of(reply, dump=True)
    if reply.many:
        generated, ref = generated["items"], {"type": "array", "items": None}
    else:
        ref = None
    if components.setdefault(name, generated) != generated:
        raise ValueError(f"two reply schemas are called {name}")
    target = {"$ref": f"#/components/schemas/{name}"}
    if ref is None:
        return target
    ref["items"] = target
    return ref


def operation(name: str, route, components: dict) -> dict:
    _, path_params = openapi_path(route.url)
    for p in path_params:
        if route.page:  # a page answers any text (a token it does not know: "not ours")
            p["schema"].pop("pattern", None)
        extra = route.path_params.get(p["name"])
        if extra:
            p.update({k: v for k, v in extra.items() if k != "schema"})
            p["schema"] = {**p["schema"], **extra.get("schema", {})}
    params = path_params + [
        {"name": q, "in": "query", "required": spec.get("required", False),
         "description": spec.get("description", ""), "schema": _text(spec["schema"])}
        for q, spec in route.query.items()]
    roles = sorted(route.access.roles) if route.access.roles else []
    op = {
        "operationId": name,
        "summary": route.summary,
        "tags": list(route.tags) or ["gateway"],
        "security": [] if route.access.public else [{"bearer": []}],
        "x-kaowu-access": route.access.name,
        "x-kaowu-roles": roles or ["anyone"],
    }
    description = route.description
    if not route.access.public:
        description = (f"{description}\n\n" if description else "") + \
            f"Who: {route.access.description} ({', '.join(roles)})."
    if description:
        op["description"] = description
    if params:
        op["parameters"] = params
    content = {}
    if route.body is not None:
        content["application/json"] = {"schema": route.body}
    for media, schema in (route.uploads or {}).items():
        content[media] = {"schema": schema}
    if content:
        op["requestBody"] = {"required": route.body_required, "content": content}
    ok = {"description": route.ok_description}
    if route.ok_content == "application/json":
        ok["content"] = {route.ok_content: {"schema": reply_ref(route.reply, components)}}
    elif route.ok_content:  # a file, a page, a script: as it is
        ok["content"] = {route.ok_content: {"schema": {"type": "string"}}}
    responses = {str(route.ok): ok}
    for status in _error_statuses(route):
        content = ({"text/html": {"schema": {"type": "string"}}} if route.page else
                   {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}})
        responses[str(status)] = {"description": _ERROR_TEXT.get(status, "error"),
                                  "content": content}
    op["responses"] = responses
    return op


def document(routes) -> dict:
    """``routes``: ``(method name, route)`` pairs (``web.routes_of(GatewayService)``)."""
    paths: dict = {}
    components = {"Error": schema_of(ErrorSchema, dump=True)}
    for name, route in routes:
        path, params = openapi_path(route.url)
        item = paths.setdefault(path, {})
        method = route.method.lower()
        if method in item:
            raise ValueError(f"{route.method} {path} is declared twice")
        item[method] = operation(name, route, components)
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "Kaowu (考务) gateway",
            "version": VERSION,
            "description": (
                "The HTTP API of Kaowu for candidates, registration-point staff, the exam "
                "authority and operators. Sign in with POST /api/login and send the token "
                "as `Authorization: Bearer <token>`; tokens live 15 minutes. Roles: "
                + ", ".join(ROLES) + ". Every error is `{\"error\": {\"code\", \"message\", "
                "\"fields\"?, \"correlation_id\"}}`; every answer carries `X-Correlation-Id`."),
        },
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "bearerFormat": "JWT"}},
            "schemas": dict(sorted(components.items())),
        },
        "paths": dict(sorted(paths.items())),
    }
