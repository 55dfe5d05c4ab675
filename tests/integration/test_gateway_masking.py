"""Operators see personal data masked by the one rule (shared.masking), over real HTTP with
the account service behind the gateway: ``GET /api/ops/events/{service}`` (it returned
whole ID numbers, mobiles, e-mail and home addresses), ``/api/ops/status`` and
``/api/ops/dashboard``."""

import json

import pytest
import requests

from services.account.service import AccountService
from services.gateway.auth import Tokens
from shared.clock import ControlledClock
from tests.integration.test_application_flow import at
from tests.integration.test_gateway_flow import TOKEN_KEY, make_config, start_stack

pytestmark = pytest.mark.integration

ID_NUMBER, MOBILE = "110101199003074477", "13812345678"
EMAIL, ADDRESS, PHONE = "zhang.san@example.com", "上海市徐汇区漕溪北路88号3号楼1201室", "021-64381234"


@pytest.fixture
def stack(runner_factory, container_factory, amqp_uri, databases):
    clock = ControlledClock(at(2026, 4, 7, 10, 30))
    config = make_config(amqp_uri, databases, clock, "gwmask")
    return start_stack(runner_factory, container_factory, config, [AccountService])


def _bearer(stack, role, account_id):
    token, _ = Tokens(TOKEN_KEY.encode()).issue(
        {"account_id": account_id, "role": role, "name": "x", "username": "x"},
        stack.clock.now())
    return {"Authorization": f"Bearer {token}"}


def test_operator_views_mask_personal_data(stack):
    r = requests.post(stack.base + "/api/accounts", timeout=30, json={
        "name": "张三", "id_type": "resident_id", "id_number": ID_NUMBER, "mobile": MOBILE,
        "username": "zhang_san", "password": "zhang2026pw"})
    assert r.status_code == 201, r.text
    candidate = _bearer(stack, "candidate", r.json()["account_id"])
    r = requests.put(stack.base + "/api/me/profile/contact", headers=candidate, timeout=30,
                     json={"email": EMAIL, "address": ADDRESS, "postcode": "200030",
                           "phone": PHONE})
    assert r.status_code == 200, r.text

    operator = _bearer(stack, "operator", "op1")
    r = requests.get(stack.base + "/api/ops/events/account", headers=operator, timeout=30)
    assert r.status_code == 200, r.text
    events = r.json()
    types = [e["type"] for e in events]
    assert "AccountRegistered" in types and "ProfileUpdated" in types
    text = json.dumps(events, ensure_ascii=False)
    for whole in (ID_NUMBER, MOBILE, EMAIL, ADDRESS, PHONE):
        assert whole not in text, whole
    registered = next(e for e in events if e["type"] == "AccountRegistered")["payload"]
    assert registered["id_number"] == "**************4477"
    assert registered["mobile"] == "138****5678"
    contact = next(e for e in events if e["type"] == "ProfileUpdated")["payload"]["data"]
    assert contact["email"] == "z***@example.com" and contact["address"].startswith("上海市徐汇区")
    assert contact["phone"] == "021-****1234" and contact["postcode"] == "200030"

    for path in ("/api/ops/status", "/api/ops/dashboard"):
        r = requests.get(stack.base + path, headers=operator, timeout=30)
        assert r.status_code == 200, r.text
        for whole in (ID_NUMBER, MOBILE, EMAIL, ADDRESS, PHONE):
            assert whole not in r.text
