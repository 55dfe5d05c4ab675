"""The gateway over HTTP, with the real services behind it on real RabbitMQ and PostgreSQL.

The services run in one ServiceRunner with a controlled clock; the gateway runs in a
container of its own on a free port (``WEB_SERVER_ADDRESS``), and the tests talk to it with
``requests`` only. ``Api`` checks every answer against the OpenAPI document the gateway
serves: request bodies are validated against the operation's schema before they are sent,
every JSON answer against its operation's documented reply (the gateway, with
``GATEWAY_CHECK_REPLIES``, also refuses to send one its reply schema does not describe),
and every error answer must be the one error shape, with the correlation id of its header.

Here: a candidate's way from registering to seeing their application (and a staff member
deciding it), sign-in failures, token expiry, the login rate limit, uploads refused by size
and by type, and errors from a service that is not running.
"""

import base64
import io
import json
import re
import socket
import time

import pytest
import requests
from nameko.testing.services import entrypoint_hook
from PIL import Image

from services.account.service import AccountService
from services.gateway.auth import PUBLIC, Tokens
from services.gateway.service import GatewayService
from services.gateway.web import Gate, route
from services.registration.service import RegistrationService
from services.verification.service import VerificationService
from shared import logging as klogging
from shared.clock import ControlledClock
from shared.dependencies import DEFAULT_RPC_TIMEOUT, EventStoreProvider
from shared.errors import NotFound
from shared.session import REFERENCE_SESSION_PATH
from tests.integration.test_account_flow import jpeg
from tests.integration.test_application_flow import SESSION, at
from tests.support import CATCH_UP, DEADLINE, check_reply, free_port, validate_json, wait_for

pytestmark = pytest.mark.integration

TOKEN_KEY = "test-gateway-token-key-0123456789abcdef"
PASSWORD = "pass2026word"
PDF = b"%PDF-1.4\n% proof of metrology work\n%%EOF\n"
STAFF_PEOPLE = {
    "staff": {"username": "point2916", "password": "Staff2916pw", "name": "李老师",
              "role": "staff", "registration_point": "2916"},
    "other_staff": {"username": "point3001", "password": "Staff3001pw", "name": "赵老师",
                    "role": "staff", "registration_point": "3001"},
    "authority": {"username": "authority1", "password": "Auth0rity1", "name": "王处长",
                  "role": "authority"},
    "operator": {"username": "operator1", "password": "0perator1x", "name": "孙运维",
                 "role": "operator"},
}
CANDIDATES = {  # name, resident ID, mobile, username
    "candidate": ("王建国", "310104198805123455", "13900000001", "wang_2026"),
    "other_candidate": ("李敏", "31011519920315002X", "13900000002", "li_2026"),
}


# --------------------------------------------------------------------------- the OpenAPI check


def _template_regex(path):
    return re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")


class Api:
    """``requests`` against the gateway, checked against its own OpenAPI document."""

    def __init__(self, base):
        self.base = base
        self.http = requests.Session()
        self.doc = requests.get(base + "/api/openapi.json", timeout=30).json()
        self.templates = [(_template_regex(p), p) for p in self.doc["paths"]]
        self.error_schema = self.doc["components"]["schemas"]["Error"]
        self.sent = []  # (method, template) of every call: for coverage checks
        self.replied = []  # (method, template, status) of every JSON answer checked

    def resolved(self, schema):
        """``schema`` with its ``$ref``s to ``components.schemas`` replaced by their target."""
        if isinstance(schema, dict):
            ref = schema.get("$ref", "")
            if ref.startswith("#/components/schemas/"):
                return self.resolved(self.doc["components"]["schemas"][ref.rsplit("/", 1)[1]])
            return {k: self.resolved(v) for k, v in schema.items()}
        if isinstance(schema, list):
            return [self.resolved(v) for v in schema]
        return schema

    def operation(self, method, path):
        path = path.split("?", 1)[0]
        # the most specific template first: fewer parameters wins
        for rx, template in sorted(self.templates, key=lambda t: t[1].count("{")):
            if rx.match(path) and method.lower() in self.doc["paths"][template]:
                return template, self.doc["paths"][template][method.lower()]
        raise AssertionError(f"{method} {path} is not in the OpenAPI document")

    def call(self, method, path, token=None, json_body=None, check_body=True, **kwargs):
        template, op = self.operation(method, path)
        if json_body is not None:
            kwargs["json"] = json_body
            if check_body:
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                validate_json(json_body, schema, formats=True)
        headers = dict(kwargs.pop("headers", {}) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        started = time.monotonic()
        response = self.http.request(method, self.base + path, headers=headers, timeout=30,
                                     **kwargs)
        self.sent.append((method, template, response.status_code, time.monotonic() - started))
        cid = response.headers.get("X-Correlation-Id")
        assert cid, f"{method} {path}: no X-Correlation-Id"
        ok = op["responses"].get(str(response.status_code), {}).get("content", {})
        if response.status_code < 400 and "application/json" in ok:
            # the answer is what the document says (made from the reply schema it was
            # dumped through): every JSON answer of every gateway test is checked here
            body = response.json()
            self.replied.append((method, template, response.status_code))
            validate_json(body, self.resolved(ok["application/json"]["schema"]), formats=True)
        if response.status_code >= 400:
            assert "Traceback" not in response.text
            documented = op["responses"]
            assert str(response.status_code) in documented, (
                f"{method} {template} answered {response.status_code}, not documented: "
                f"{sorted(documented)} ({response.text[:300]})")
            if "application/json" in documented[str(response.status_code)]["content"]:
                assert response.headers["Content-Type"].startswith("application/json")
                body = response.json()
                validate_json(body, self.error_schema)
                assert body["error"]["correlation_id"] == cid
        return response

    def get(self, path, token=None, **kw):
        return self.call("GET", path, token, **kw)

    def post(self, path, token=None, body=None, **kw):
        return self.call("POST", path, token, body, **kw)

    def put(self, path, token=None, body=None, **kw):
        return self.call("PUT", path, token, body, **kw)

    def login(self, username, password=PASSWORD):
        r = self.post("/api/login", body={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return r.json()["token"]


# --------------------------------------------------------------------------- the stack


class Stack:
    def __init__(self, runner, gateway, clock, base):
        self.runner, self.gateway, self.clock = runner, gateway, clock
        self.api = Api(base)
        self.base = base
        self.accounts = {}

    def container(self, name):
        return next(c for c in self.runner.containers if c.service_name == name)

    def store(self, service):
        return next(d for d in self.container(service).dependencies
                    if isinstance(d, EventStoreProvider)).store

    def rpc(self, service, method, *args, **kwargs):
        with entrypoint_hook(self.container(service), method) as hook:
            return check_reply(service, method, hook(*args, **kwargs))

    def wait(self, predicate, timeout=15):
        return wait_for(predicate, timeout)

    def staff(self, key):
        made = self.rpc("account", "create_staff", STAFF_PEOPLE[key])
        self.accounts[key] = made["account_id"]
        return self.api.login(STAFF_PEOPLE[key]["username"], STAFF_PEOPLE[key]["password"])

    def load_session(self, token):
        r = self.api.post("/api/authority/sessions", token,
                          data=REFERENCE_SESSION_PATH.read_bytes(),
                          headers={"Content-Type": "application/yaml"})
        assert r.status_code == 201, r.text
        return r.json()

    def candidate(self, key, complete=True):
        """Register over HTTP, sign in, fill the profile (photo uploaded as a file)."""
        name, id_number, mobile, username = CANDIDATES[key]
        r = self.api.post("/api/accounts", body={
            "name": name, "id_type": "resident_id", "id_number": id_number, "mobile": mobile,
            "username": username, "password": PASSWORD})
        assert r.status_code == 201, r.text
        self.accounts[key] = r.json()["account_id"]
        token = self.api.login(username)
        if complete:
            birth = f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}"
            sections = {
                "basic": {"gender": "M" if int(id_number[16]) % 2 else "F",
                          "birth_date": birth, "ethnicity": "汉族"},
                "education": {"education": [{
                    "level": "本科", "school": "某大学", "major": "测控",
                    "major_category": "science_engineering", "graduated_on": "2005-03-31",
                    "certificate_no": "102471201005001234"}], "degrees": []},
                "work": {"entries": [{"employer": "上海市计量测试技术研究院", "position": "工程师",
                                      "start": "2012-01-01", "end": None, "metrology": True}]},
                "contact": {"email": f"{username}@example.com", "address": "上海市徐汇区"},
            }
            for section, data in sections.items():
                r = self.api.put(f"/api/me/profile/{section}", token, data)
                assert r.status_code == 200, r.text
            r = self.api.put("/api/me/photo", token, files={
                "photo": ("photo.jpg", base64.b64decode(jpeg()), "image/jpeg")})
            assert r.status_code == 200 and r.json()["complete"], r.text
            self.wait(lambda: self._known_complete(self.accounts[key]))
        return token

    def _known_complete(self, account_id):
        try:
            return self.rpc("registration", "get_candidate", account_id)["complete"]
        except NotFound:
            return False

    def apply(self, token, key, commitment=True):
        name = CANDIDATES[key][0]
        body = {"session_id": SESSION, "level": "L1", "registration_point": "2916",
                "commitment": ({"pledge_version": "2026-v1", "signed_name": name, "agreed": True}
                               if commitment else None)}
        return self.api.post("/api/me/applications", token, body)


def make_config(amqp_uri, databases, clock, name):
    return {"AMQP_URI": amqp_uri, "DATABASE_URL": databases.new(name) + "_{service}",
            "CLOCK": clock, "CATCH_UP_INTERVAL": CATCH_UP, "DEADLINE_INTERVAL": DEADLINE,
            "max_workers": 10, "PASSWORD_HASH": {"time_cost": 1, "memory_cost": 1024},
            "ADMISSION_QR_KEY": "gateway-test-qr-key-0123456789abcdef0123"}


def start_stack(runner_factory, container_factory, config, services, gateway_config=None):
    runner = runner_factory(config, *services)
    runner.start()
    port = free_port()
    # the services' own RPC deadline, not the edge's shorter one: on a loaded test machine a
    # call can wait seconds for a core, and a 503 then is the machine, not the code
    gateway = container_factory(GatewayService, {
        **config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}", "GATEWAY_TOKEN_KEY": TOKEN_KEY,
        "GATEWAY_RPC_TIMEOUT": DEFAULT_RPC_TIMEOUT, "GATEWAY_CHECK_REPLIES": True,
        **(gateway_config or {})})
    gateway.start()
    return Stack(runner, gateway, config["CLOCK"], f"http://127.0.0.1:{port}")


@pytest.fixture
def stack(runner_factory, container_factory, amqp_uri, databases):
    clock = ControlledClock(at(2026, 4, 7, 10, 30))
    config = make_config(amqp_uri, databases, clock, "gwflow")
    return start_stack(runner_factory, container_factory, config,
                       [AccountService, RegistrationService, VerificationService])


# --------------------------------------------------------------------------- the tests


def test_candidate_flow_through_http(stack):
    api = stack.api
    assert api.get("/api/sessions").json() == []
    authority = stack.staff("authority")
    session = stack.load_session(authority)
    assert session["session_id"] == SESSION and session["phase"] == "application"
    assert api.get(f"/api/sessions/{SESSION}").json()["windows"]["application"]["label"] == "网上报名"

    # 注册: bad input names the field; the right input makes an account
    r = api.post("/api/accounts", body={"name": "王建国", "id_type": "resident_id",
                                        "id_number": "310104198805123456", "mobile": "13900000001",
                                        "username": "wang_2026", "password": PASSWORD})
    assert r.status_code == 400 and "id_number" in r.json()["error"]["fields"]
    token = stack.candidate("candidate")
    me = api.get("/api/whoami", token).json()
    assert me["role"] == "candidate" and me["account_id"] == stack.accounts["candidate"]
    profile = api.get("/api/me/profile", token).json()
    assert profile["completeness"] == 100 and profile["username"] == "wang_2026"
    contact = api.get("/api/me/profile/contact", token).json()
    assert contact["data"]["email"] == "wang_2026@example.com"
    photo = api.get("/api/me/photo", token)
    assert photo.headers["Content-Type"] == "image/jpeg" and photo.content.startswith(b"\xff\xd8")
    assert api.get("/api/me/profile/nosuch", token).status_code == 404

    # 网上报名 with the pledge: the automatic check passes it. The request's correlation id
    # and the signed-in candidate travel with the RPC into the event's metadata.
    name = CANDIDATES["candidate"][0]
    r = api.post("/api/me/applications", token, {
        "session_id": SESSION, "level": "L1", "registration_point": "2916",
        "commitment": {"pledge_version": "2026-v1", "signed_name": name, "agreed": True}},
        headers={"X-Correlation-Id": "flow-test-correlation-0001"})
    assert r.status_code == 201, r.text
    assert r.headers["X-Correlation-Id"] == "flow-test-correlation-0001"
    [submitted] = [e for e in stack.store("registration").events_after(0, 1000)
                   if e.type == "ApplicationSubmitted"]
    assert submitted.metadata["correlation_id"] == "flow-test-correlation-0001"
    assert submitted.metadata["actor"] == f"candidate:{stack.accounts['candidate']}"
    assert r.json()["status"] == "submitted"
    app = stack.wait(lambda: (a := api.get(f"/api/me/applications/{SESSION}", token).json())
                     ["status"] == "auto_passed" and a)
    assert app["account_id"] == stack.accounts["candidate"]
    assert [h["type"] for h in app["history"]][:2] == ["ApplicationSubmitted", "AutoCheckPassed"]
    r = stack.apply(token, "candidate")  # one application per session
    assert r.status_code == 409 and r.json()["error"]["code"] == "refused"

    # another candidate without a pledge: proof as a raw PDF, staff decide over HTTP
    other = stack.candidate("other_candidate")
    assert api.get(f"/api/me/applications/{SESSION}", other).status_code == 404  # not the first's
    assert stack.apply(other, "other_candidate", commitment=False).status_code == 201
    stack.wait(lambda: api.get(f"/api/me/applications/{SESSION}", other).json()["status"]
               == "proof_requested")
    r = api.post(f"/api/me/applications/{SESSION}/proof?filename=工作证明.pdf", other,
                 data=PDF, headers={"Content-Type": "application/pdf"})
    assert r.status_code == 200, r.text
    assert r.json()["history"][-1]["files"] == [{"name": "工作证明.pdf", "size": len(PDF)}]
    staff = stack.staff("staff")
    queue = stack.wait(lambda: api.get("/api/staff/manual-queue", staff).json())
    app_id = queue[0]["application_id"]
    assert app_id == f"{SESSION}.{stack.accounts['other_candidate']}"
    elsewhere = stack.staff("other_staff")
    assert api.get("/api/staff/manual-queue", elsewhere).json() == []
    r = api.post(f"/api/staff/cases/{app_id}/decision", elsewhere, {"decision": "pass"})
    assert r.status_code == 403, r.text  # verification says: not this point's case
    assert api.get(f"/api/staff/cases/{app_id}", elsewhere).status_code == 403
    r = api.post(f"/api/staff/cases/{app_id}/decision", staff,
                 {"decision": "pass", "reason": "工作证明核实无误", "application_id": "x"},
                 check_body=False)
    assert r.status_code == 400 and "application_id" in r.json()["error"]["fields"]
    r = api.post(f"/api/staff/cases/{app_id}/decision", staff,
                 {"decision": "pass", "reason": "工作证明核实无误"})
    assert r.status_code == 200 and r.json()["status"] == "passed", r.text
    stack.wait(lambda: api.get(f"/api/me/applications/{SESSION}", other).json()["status"]
               == "manual_passed")

    # a token lives 15 minutes
    stack.clock.advance(minutes=16)
    r = api.get(f"/api/me/applications/{SESSION}", token)
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]
    assert "invalid_token" in r.headers["WWW-Authenticate"]
    token = api.login("wang_2026")
    assert api.get(f"/api/me/applications/{SESSION}", token).status_code == 200

    # change the password; the old one no longer signs in
    r = api.post("/api/password", token, {"old_password": "wrong-one1", "new_password": "N3wer2026pw"})
    assert r.status_code == 400 and "old_password" in r.json()["error"]["fields"]
    r = api.post("/api/password", token, {"old_password": PASSWORD, "new_password": "N3wer2026pw"})
    assert r.status_code == 200, r.text
    assert api.post("/api/login", body={"username": "wang_2026", "password": PASSWORD}
                    ).status_code == 401
    api.login("wang_2026", "N3wer2026pw")


def test_sign_in_failures_rate_limit_and_unavailable_services(stack):
    api = stack.api
    stack.candidate("candidate", complete=False)
    r = api.post("/api/login", body={"username": "nobody", "password": "whatever1"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = api.post("/api/login", body={"username": "x"}, check_body=False)
    assert r.status_code == 400 and "password" in r.json()["error"]["fields"]
    r = api.post("/api/login", data="not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "validation_failed"
    r = api.post("/api/login", data="username=a", headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415

    # 5 failed logins for wang_2026 from this address: the pair is locked for 15 minutes
    # (tests/integration/test_account_reset.py: the owner from another address is not)
    for _ in range(5):
        r = api.post("/api/login", body={"username": "wang_2026", "password": "wrong-pass1"})
        assert r.status_code == 401
    r = api.post("/api/login", body={"username": "WANG_2026", "password": PASSWORD})
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 900
    stack.clock.advance(seconds=61)
    assert api.post("/api/login", body={"username": "wang_2026", "password": PASSWORD}
                    ).status_code == 429
    stack.clock.advance(minutes=15)
    assert api.login("wang_2026")

    # tokens: none, garbage, signed with another key, a role the route is not for
    assert api.get("/api/me/profile").status_code == 401
    assert api.get("/api/me/profile", "garbage.token.here").status_code == 401
    forged, _ = Tokens(b"k" * 32).issue({"account_id": stack.accounts["candidate"],
                                         "role": "operator"}, stack.clock.now())
    assert api.get("/api/ops/status", forged).status_code == 401
    assert api.get("/api/ops/status", api.login("wang_2026")).status_code == 403
    r = api.http.get(stack.base + "/api/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = api.http.delete(stack.base + "/api/login")
    assert r.status_code == 405 and r.headers["Allow"] == "POST"

    # a service that is not running (admission is not, here): 503, never a hang or a 500
    token = api.login("wang_2026")
    r = api.get(f"/api/me/tickets/{SESSION}", token)  # admission does not run here
    assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable"
    assert "admission" in r.json()["error"]["message"]
    r = api.get("/verify/sometoken")  # the page says so too, as a page
    assert r.status_code == 503 and r.headers["Content-Type"].startswith("text/html")
    assert "Unavailable" in r.text
    ready = api.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert api.get("/health/live").json()["status"] == "live"
    assert "kaowu_entrypoint_calls_total" in api.get("/metrics").text


def test_uploads_refused_by_size_and_type(stack):
    api = stack.api
    token = stack.candidate("candidate", complete=False)
    png = io.BytesIO()
    Image.new("RGB", (295, 413), (255, 255, 255)).save(png, "PNG")
    r = api.put("/api/me/photo", token, files={"photo": ("photo.jpg", png.getvalue(), "image/jpeg")})
    assert r.status_code == 415 and "JPEG" in r.json()["error"]["message"]
    r = api.put("/api/me/photo", token, data=png.getvalue(), headers={"Content-Type": "image/png"})
    assert r.status_code == 415
    big = b"\xff\xd8\xff\xe0" + b"\0" * (300 * 1024)
    r = api.put("/api/me/photo", token, data=big, headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    r = api.put("/api/me/photo", token, files={"photo": ("p.jpg", big, "image/jpeg")})
    assert r.status_code == 413
    # a JPEG the account service refuses (wrong size): its message comes through
    small = io.BytesIO()
    Image.effect_noise((200, 200), 60).convert("RGB").save(small, "JPEG", quality=95)
    r = api.put("/api/me/photo", token, data=small.getvalue(), headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 400 and "295" in json.dumps(r.json(), ensure_ascii=False)

    # 413 from the declared length, before the body is read (none is ever sent here)
    with socket.create_connection(("127.0.0.1", int(stack.base.rsplit(":", 1)[1])), timeout=5) as s:
        s.sendall((f"PUT /api/me/photo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                   "Content-Type: image/jpeg\r\nContent-Length: 104857600\r\n\r\n").encode())
        started = time.monotonic()
        head = s.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head
    assert time.monotonic() - started < 5

    # proof: a text file is not a PDF; too many files
    r = api.post(f"/api/me/applications/{SESSION}/proof", token,
                 files=[("files", ("a.pdf", b"just text", "application/pdf"))])
    assert r.status_code == 415
    r = api.post(f"/api/me/applications/{SESSION}/proof", token,
                 files=[("files", (f"{i}.pdf", PDF, "application/pdf")) for i in range(6)])
    assert r.status_code == 400 and "files" in r.json()["error"]["fields"]
    r = api.post(f"/api/me/applications/{SESSION}/proof", token, data=b"x" * 10,
                 headers={"Content-Type": "text/plain"})
    assert r.status_code == 415


class BrokenGateway:
    """A gateway route with a bug in it: what reaches the client, and what the log says."""

    name = "broken_gateway"
    gate = Gate()

    @route("GET", "/api/broken", access=PUBLIC, summary="raises")
    def broken(self, request, caller):
        return {"value": 1 / 0}  # a bug with a secret-looking message nobody may see

    @route("GET", "/api/leaky", access=PUBLIC, summary="raises with internals")
    def leaky(self, request, caller):
        raise RuntimeError("postgresql://kaowu:s3cret@db/kaowu_account is down")


def test_a_bug_is_answered_500_with_a_correlation_id_and_logged(container_factory, amqp_uri):
    port = free_port()
    container = container_factory(BrokenGateway, {
        "AMQP_URI": amqp_uri, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
        "GATEWAY_TOKEN_KEY": TOKEN_KEY})
    container.start()
    logs = io.StringIO()
    klogging.configure(stream=logs, level="WARNING")
    try:
        for path in ("/api/broken", "/api/leaky"):
            r = requests.get(f"http://127.0.0.1:{port}{path}",
                             headers={"X-Correlation-Id": f"bug-hunt-{path[5:]}-0001"}, timeout=30)
            assert r.status_code == 500
            error = r.json()["error"]
            assert error["code"] == "internal"
            assert error["correlation_id"] == r.headers["X-Correlation-Id"] == \
                f"bug-hunt-{path[5:]}-0001"
            for secret in ("Traceback", "ZeroDivisionError", "division", "s3cret", "postgresql"):
                assert secret not in r.text
    finally:
        klogging.configure(level="WARNING")
    logged = [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]
    failed = [entry for entry in logged if entry.get("event") == "http.failed"]
    assert {e["correlation_id"] for e in failed} == {"bug-hunt-broken-0001", "bug-hunt-leaky-0001"}
    assert any("ZeroDivisionError" in e.get("exception", "") for e in failed)
