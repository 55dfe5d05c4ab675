"""The OpenAPI document the gateway serves is true to the gateway that serves it.

- every route the running gateway has registered is in the document, and every operation
  of the document is a registered route (same method, same path template);
- every documented path is served: a request to it is routed (never the router's own
  404 "there is nothing at" or 405), whoever asks;
- schemathesis reads the document (OpenAPI 3.1) and fuzzes a few operations with bodies
  generated from it: no 5xx, every status and content type documented, every error in
  the error shape. (The other gateway tests validate every body they send against the
  document and every error they get against its Error schema.)
"""

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from nameko.web.handlers import HttpRequestHandler
from schemathesis import checks

from services.account.service import AccountService
from services.gateway.openapi import openapi_path
from services.registration.service import RegistrationService
from shared.clock import ControlledClock
from tests.integration.test_application_flow import SESSION, at
from tests.integration.test_gateway_flow import make_config, start_stack

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(runner_factory, container_factory, amqp_uri, databases):
    clock = ControlledClock(at(2026, 4, 7, 10, 30))
    config = make_config(amqp_uri, databases, clock, "gwdoc")
    # fuzzing logs in with made-up names: no per-address limit to trip over here
    return start_stack(runner_factory, container_factory, config,
                       [AccountService, RegistrationService],
                       {"GATEWAY_LOGIN_LIMIT": {"per_username": 5, "per_address": 100_000}})


def sample(param):
    schema = param["schema"]
    if "enum" in schema:
        return schema["enum"][0]
    return "0" if schema.get("type") == "integer" else "sample-value"


def test_document_and_routes_are_the_same(stack):
    doc = stack.api.doc
    registered = {(ep.method, openapi_path(ep.url)[0]) for ep in stack.gateway.entrypoints
                  if isinstance(ep, HttpRequestHandler)}
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    assert registered == documented
    assert len(documented) > 50
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))

    for path, item in doc["paths"].items():
        for method, op in item.items():
            url = path
            for p in op.get("parameters", []):
                if p["in"] == "path":
                    url = url.replace("{" + p["name"] + "}", str(sample(p)))
            r = requests.request(method.upper(), stack.base + url, timeout=30,
                                 allow_redirects=False)
            routed = not (r.status_code == 405 or (
                r.status_code == 404 and "There is nothing at" in r.text))
            assert routed, f"{method.upper()} {path} is documented but not served: {r.text}"
            assert str(r.status_code) in op["responses"], (method, path, r.status_code, r.text)
            if not op["security"]:
                continue
            assert r.status_code == 401, (method, path, r.status_code)  # nobody signed in


def test_fuzzing_from_the_document(stack):
    api = stack.api
    token = stack.candidate("candidate", complete=False)
    schema = schemathesis.openapi.from_dict(api.doc)
    targets = [("/api/accounts", "POST", None), ("/api/login", "POST", None),
               ("/api/sessions/{session_id}", "GET", None),
               ("/api/me/profile/{section}", "PUT", token),
               ("/api/me/applications", "POST", token),
               ("/api/password", "POST", token)]
    seen = set()
    for path, method, bearer in targets:
        fuzz(stack, schema[path][method],
             {"Authorization": f"Bearer {bearer}"} if bearer else {}, seen)
    # the fuzzer's bodies did reach the services (not only refusals at the edge)
    assert any(status == 400 for _, status in seen)
    assert api.get(f"/api/sessions/{SESSION}").status_code == 404  # nothing broke meanwhile


def fuzz(stack, operation, headers, seen):
    @settings(max_examples=8, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case):
        response = case.call(base_url=stack.base, headers=headers)
        seen.add((operation.path, response.status_code))
        assert response.status_code < 500, response.text
        assert "x-correlation-id" in {k.lower() for k in response.headers}
        # every answer as documented (not "every schema-valid body is accepted": the
        # document cannot say everything the services check, e.g. ID check digits)
        case.validate_response(response, headers=headers, checks=[
            checks.not_a_server_error, checks.status_code_conformance,
            checks.content_type_conformance, checks.response_schema_conformance])

    run()
