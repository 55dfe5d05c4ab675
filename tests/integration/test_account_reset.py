"""找回密码, the end of sign-ins on a password change, token renewal, and the gateway's
limits (sign-up, reset, the login lockout per username and address), over HTTP with the
account and notification services on real RabbitMQ and PostgreSQL.

The gateway trusts 127.0.0.1 as its proxy here, so ``X-Forwarded-For`` names the client
address and one test can speak from several addresses.
"""

import json
import re
import time

import pytest

from services.account.service import AccountService
from services.notification.gateway import read_sink
from services.notification.service import NotificationService
from shared.clock import ControlledClock
from tests.integration.test_application_flow import at
from tests.integration.test_gateway_flow import PASSWORD, make_config, start_stack

pytestmark = pytest.mark.integration

MOBILE = "13900000001"
USER = {"name": "王建国", "id_type": "resident_id", "id_number": "310104198805123455",
        "mobile": MOBILE, "username": "wang_2026", "password": PASSWORD}
HOME, AWAY = {"X-Forwarded-For": "198.51.100.7"}, {"X-Forwarded-For": "203.0.113.9"}
REVOCATION_CACHE = 1.0  # seconds, as GATEWAY_REVOCATION_CACHE


@pytest.fixture
def stack(runner_factory, container_factory, amqp_uri, databases, tmp_path):
    clock = ControlledClock(at(2026, 4, 7, 10, 30))
    config = {**make_config(amqp_uri, databases, clock, "gwreset"),
              "DELIVERY_INTERVAL": 0.1, "SMS_GATEWAY": "sink",
              "SMS_SINK_PATH": str(tmp_path / "sms-sink.jsonl"), "SMS_RATE_PER_S": 50,
              "PASSWORD_RESET_KEY": "test-password-reset-key-0123456789abcdef"}
    s = start_stack(runner_factory, container_factory, config,
                    [AccountService, NotificationService],
                    {"GATEWAY_TRUSTED_PROXIES": "127.0.0.1",
                     "GATEWAY_REVOCATION_CACHE": REVOCATION_CACHE,
                     "GATEWAY_SIGNUP_LIMIT": {"per_address": 6, "per_identity": 3,
                                              "window": 600},
                     "GATEWAY_RESET_LIMIT": {"per_address": 8, "per_account": 4,
                                             "window": 900}})
    s.sink = tmp_path / "sms-sink.jsonl"
    return s


def register(stack, body=USER, headers=HOME):
    return stack.api.post("/api/accounts", body=body, headers=headers)


def login(stack, password=PASSWORD, headers=HOME, username="wang_2026"):
    return stack.api.post("/api/login", body={"username": username, "password": password},
                          headers=headers)


def codes(stack):
    return [re.search(r"验证码：(\d{6})", r["text"]).group(1)
            for r in read_sink(stack.sink) if "验证码" in r["text"]]


def all_events_text(stack, service):
    return json.dumps([e.to_dict() for e in stack.store(service).iter_after(0)],
                      ensure_ascii=False)


def test_password_reset_ends_earlier_sign_ins(stack):
    api = stack.api
    assert register(stack).status_code == 201
    account_id = login(stack).json()["account"]["account_id"]
    old = login(stack).json()["token"]
    stack.clock.advance(seconds=2)

    # the same answer whether the details match an account or not; one SMS, to the owner
    answers = []
    for body in ({"username": "wang_2026", "mobile": "13900000099"},
                 {"username": "nobody_here", "mobile": MOBILE},
                 {"username": "WANG_2026", "mobile": "+86 139-0000-0001"}):
        r = api.post("/api/password-reset/start", body=body, headers=HOME)
        assert r.status_code == 202, r.text
        answers.append(r.json())
    assert answers[0] == answers[1] == answers[2] and answers[0]["accepted"] is True
    stack.wait(lambda: codes(stack))
    time.sleep(0.5)  # nothing else goes out
    [code] = codes(stack)
    assert [r["to"] for r in read_sink(stack.sink) if "验证码" in r["text"]] == [MOBILE]
    # the code is in neither service's log (the account keeps a keyed hash only)
    assert code not in all_events_text(stack, "account")
    assert code not in all_events_text(stack, "notification")
    inbox = stack.rpc("notification", "messages", account_id)
    assert any(m["template"] == "password_reset_code" and code not in m["body"] for m in inbox)

    # wrong code, unknown username: the same refusal; then the right code, once
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    refusals = [api.post("/api/password-reset/finish", body={
        "username": name, "code": c, "new_password": "Reset2026pw"}, headers=HOME)
        for name, c in (("wang_2026", wrong), ("nobody_here", code))]
    for r in refusals:
        assert r.status_code == 400 and r.json()["error"]["reason"] == "invalid_code"
        assert "code" in r.json()["error"]["fields"]
    assert refusals[0].json()["error"]["message"] == refusals[1].json()["error"]["message"]
    r = api.post("/api/password-reset/finish", body={
        "username": "wang_2026", "code": code, "new_password": "wang_2026"}, headers=HOME,
        check_body=False)
    assert r.status_code == 400 and "new_password" in r.json()["error"]["fields"]  # the rule
    # the owner has locked themselves out at home meanwhile; the reset lets them in again
    assert [login(stack, "Forgot2026", HOME).status_code for _ in range(6)] == [401] * 5 + [429]
    r = api.post("/api/password-reset/finish", body={
        "username": "wang_2026", "code": code, "new_password": "Reset2026pw"}, headers=HOME)
    assert r.status_code == 200 and r.json() == {"account_id": account_id, "reset": True}
    r = api.post("/api/password-reset/finish", body={
        "username": "wang_2026", "code": code, "new_password": "Again2026pw"}, headers=HOME)
    assert r.status_code == 400 and r.json()["error"]["reason"] == "invalid_code"  # used

    # the old password and the old token no longer work; the new password does
    assert login(stack).status_code == 401
    r = api.get("/api/whoami", old)
    assert r.status_code == 401 and r.json()["error"]["reason"] == "signed_out"
    assert "revoked" in r.headers["WWW-Authenticate"]
    assert api.post("/api/token/renew", old).status_code == 401
    fresh = login(stack, "Reset2026pw").json()["token"]
    assert api.get("/api/whoami", fresh).status_code == 200

    # renewal: a new expiry, same claims; the renewed token works
    stack.clock.advance(minutes=10)
    r = api.post("/api/token/renew", fresh)
    assert r.status_code == 200, r.text
    renewed = r.json()
    assert renewed["expires_at"] == int(stack.clock.now().timestamp()) + 900
    assert renewed["account"]["account_id"] == account_id
    stack.clock.advance(minutes=10)  # past the first token's expiry
    assert api.get("/api/whoami", fresh).status_code == 401
    assert api.get("/api/whoami", renewed["token"]).json()["account_id"] == account_id

    # a change made elsewhere (another gateway replica): refused within the cache window
    stack.clock.advance(seconds=1)
    stack.rpc("account", "change_password", account_id,
              {"old_password": "Reset2026pw", "new_password": "Chang3d2026"})
    deadline = time.monotonic() + REVOCATION_CACHE + 3
    while api.get("/api/whoami", renewed["token"]).status_code == 200:
        assert time.monotonic() < deadline, "the old token still works after the cache window"
        time.sleep(0.1)
    assert api.post("/api/token/renew", renewed["token"]).status_code == 401
    assert login(stack, "Chang3d2026").status_code == 200


def test_reset_codes_are_limited_and_expire(stack):
    api = stack.api
    assert register(stack).status_code == 201
    start = {"username": "wang_2026", "mobile": MOBILE}
    assert api.post("/api/password-reset/start", body=start, headers=HOME).status_code == 202
    stack.wait(lambda: len(codes(stack)) == 1)
    # within a minute: answered alike, no second SMS (the account's own limit)
    assert api.post("/api/password-reset/start", body=start, headers=HOME).status_code == 202
    time.sleep(0.5)
    assert len(codes(stack)) == 1
    [code] = codes(stack)
    stack.clock.advance(minutes=10)  # expired
    r = api.post("/api/password-reset/finish", body={
        "username": "wang_2026", "code": code, "new_password": "Reset2026pw"}, headers=HOME)
    assert r.status_code == 400 and r.json()["error"]["reason"] == "invalid_code"
    assert login(stack).status_code == 200

    # per username at the gateway: the 5th try in 15 minutes is 429, existing or not
    stack.clock.advance(minutes=15, seconds=1)  # the tries above have aged out
    for name, headers in (("wang_2026", AWAY), ("nobody_here", HOME)):
        body = {"username": name, "mobile": MOBILE}
        statuses = [api.post("/api/password-reset/start", body=body, headers=headers
                             ).status_code for _ in range(5)]
        assert statuses == [202] * 4 + [429], (name, statuses)
    r = api.post("/api/password-reset/finish", body={
        "username": "wang_2026", "code": "123456", "new_password": "Reset2026pw"}, headers=HOME)
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 900
    # per address: 8 in 15 minutes (HOME has made 4)
    statuses = [api.post("/api/password-reset/start", body={"username": f"user_{i}",
                                                            "mobile": MOBILE},
                         headers=HOME).status_code for i in range(5)]
    assert statuses == [202] * 4 + [429]


def test_sign_up_is_limited_per_address_and_per_identity(stack):
    assert register(stack).status_code == 201
    # the same ID number again, from anywhere: the 4th attempt within 10 minutes is 429
    for headers in (HOME, AWAY):
        assert register(stack, {**USER, "username": "other_1"}, headers).status_code == 409
    r = register(stack, {**USER, "username": "other_2", "mobile": "13900000077"}, AWAY)
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 600
    # the same mobile (however written) with another ID number: limited alike
    r = register(stack, {**USER, "id_number": "31011519920315002X", "username": "other_3",
                         "mobile": "+86 139-0000-0001"}, {"X-Forwarded-For": "192.0.2.1"})
    assert r.status_code == 429
    # per address: 6 attempts from HOME in 10 minutes (2 made above)
    bodies = [{**USER, "id_type": "passport", "id_number": f"E1234567{i}",
               "mobile": f"1370000000{i}", "username": f"pass_{i}"} for i in range(5)]
    assert [register(stack, b, HOME).status_code for b in bodies] == [201] * 4 + [429]
    stack.clock.advance(minutes=10, seconds=1)
    assert register(stack, bodies[4], HOME).status_code == 201


def test_lockout_answers_alike_and_spares_the_owner_elsewhere(stack):
    assert register(stack).status_code == 201
    seen = {}
    for name in ("wang_2026", "nobody_here"):  # an account and no account
        answers = [login(stack, "Wrong2026pw", AWAY, name) for _ in range(6)]
        seen[name] = [(r.status_code, r.json()["error"]["code"], r.json()["error"]["message"]
                       if r.status_code == 401 else None) for r in answers]
        assert 1 <= int(answers[-1].headers["Retry-After"]) <= 900
    assert seen["wang_2026"] == seen["nobody_here"]
    assert [s for s, _, _ in seen["wang_2026"]] == [401] * 5 + [429]
    # the owner, from their own address, signs in meanwhile; the attacker still cannot
    assert login(stack, PASSWORD, HOME).status_code == 200
    assert login(stack, PASSWORD, AWAY).status_code == 429
    stack.clock.advance(minutes=15, seconds=1)
    assert login(stack, PASSWORD, AWAY).status_code == 200
