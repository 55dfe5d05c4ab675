"""Hostile and unusual request bodies at the gateway, over real HTTP (eventlet's server)
with the account and registration services behind it: deeply nested JSON, session
documents (YAML) with control characters or deep nesting, and chunked bodies
(``Transfer-Encoding: chunked``, no Content-Length). Each is read or refused with the one
error shape; never a 500."""

import json
import socket

import pytest
import requests

from services.account.service import AccountService
from services.gateway.auth import Tokens
from services.registration.service import RegistrationService
from shared.clock import ControlledClock
from tests.integration.test_application_flow import at
from tests.integration.test_gateway_flow import TOKEN_KEY, make_config, start_stack

pytestmark = pytest.mark.integration

REGISTRATION = {"name": "张三", "id_type": "resident_id", "id_number": "110101199003074477",
                "mobile": "13800138000", "username": "chunky_1", "password": "chunk2026pw"}


@pytest.fixture(scope="module")
def stack(module_factories, module_amqp_uri, databases):
    """One stack for the module: each test is a refusal, or a sign-up of its own."""
    clock = ControlledClock(at(2026, 4, 7, 10, 30))
    config = make_config(module_amqp_uri, databases, clock, "gwbodies")
    return start_stack(*module_factories, config, [AccountService, RegistrationService])


def _authority(stack):
    token, _ = Tokens(TOKEN_KEY.encode()).issue(
        {"account_id": "authority1", "role": "authority", "name": "王处长",
         "username": "authority1"}, stack.clock.now())
    return {"Authorization": f"Bearer {token}"}


def _refused_400(r, field):
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_failed" and error["fields"][field]
    assert "Traceback" not in r.text and "RecursionError" not in r.text
    return error


def _chunks(data: bytes, size: int = 1000):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def test_deeply_nested_json_is_400_without_a_token(stack):
    for depth in (1000, 40):
        body = '{"name": ' + "[" * depth + "]" * depth + "}"
        r = requests.post(stack.base + "/api/accounts", data=body, timeout=30,
                          headers={"Content-Type": "application/json"})
        error = _refused_400(r, "_body")
        assert "nested more than 32 levels" in error["fields"]["_body"]


def test_session_documents_unreadable_or_too_deep_are_400(stack):
    auth = _authority(stack)
    for text in ("session_id: x\x07\n", "a: " + "[" * 1000 + "]" * 1000,
                 "a: &x [1, *x]\n"):
        r = requests.post(stack.base + "/api/authority/sessions", timeout=30,
                          data=text.encode(), headers={**auth, "Content-Type": "application/yaml"})
        _refused_400(r, "document")
        r = requests.post(stack.base + "/api/authority/sessions", json={"yaml": text},
                          headers=auth, timeout=30)
        _refused_400(r, "document")


def test_a_chunked_json_body_is_read(stack):
    r = requests.post(stack.base + "/api/accounts", timeout=30,
                      data=_chunks(json.dumps(REGISTRATION).encode(), 16),
                      headers={"Content-Type": "application/json"})
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in r.request.headers
    assert r.status_code == 201, r.text
    assert r.json()["account_id"]


def test_a_chunked_yaml_body_is_read(stack):
    r = requests.post(stack.base + "/api/authority/sessions", timeout=30,
                      data=_chunks(b"session_id: x\nnot: [a, mapping\n"),
                      headers={**_authority(stack), "Content-Type": "application/yaml"})
    error = _refused_400(r, "document")  # read and parsed: the syntax error is named
    assert "line" in error["fields"]["document"]


def test_a_chunked_body_over_the_limit_is_413(stack):
    big = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    r = requests.post(stack.base + "/api/accounts", data=_chunks(big, 64 * 1024), timeout=30,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


def test_a_chunked_body_is_refused_before_it_ends(stack):
    """The limit is applied as the chunks arrive: the answer comes while the client is
    still sending (the rest is never read into memory)."""
    port = int(stack.base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"POST /api/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        for _ in range(20):  # 1.25 MiB, past the 1 MiB limit, and no terminating chunk
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        head = s.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head
