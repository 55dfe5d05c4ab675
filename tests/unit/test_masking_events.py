"""Every event type, published (shared.contracts) or private to a service, as an operator
sees it: ``GET /api/ops/events/{service}`` (``shared.masking.mask``), ``kaowu events``
(one line and ``--json``), ``kaowu history`` (the same lines) and the services' logs. No
ID number, mobile, phone, e-mail or postal address may appear whole in any of them.

Payloads are generated from each event type's marshmallow schema: string fields whose
name says they hold personal data get such data; every other free-text field gets text
with ID numbers, mobiles and e-mail addresses inside it; free-form dictionaries (profile
sections, the candidate, a dead-lettered event) get nested personal data under the keys
the services use.
"""

from __future__ import annotations

import importlib
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import fields

from cli.events import as_json, line
from shared import logging as klogging
from shared.contracts import INTEGRATION
from shared.masking import mask

SERVICES = ("account", "registration", "verification", "admission", "scoring", "certificate",
            "notification")
REGISTRIES = {name: importlib.import_module(f"services.{name}.schemas").REGISTRY
              for name in SERVICES}
# each type once: the published ones (in every service's registry) under "contracts"
EVENT_TYPES = sorted({("contracts" if t in INTEGRATION else service, t)
                      for service, reg in REGISTRIES.items() for t in reg.names()})
REGISTRIES["contracts"] = INTEGRATION
OWN_IDS = ("_id", "ticket_number", "certificate_number", "sha256")

# independent of shared.masking's key list on purpose: what the test calls personal
_PERSONAL_SUFFIXES = {"id_number": "id", "mobile": "mobile", "phone": "phone",
                      "email": "email", "address": "address"}

ids = st.builds(lambda n, check: f"{n}{check}", st.integers(10**16, 7 * 10**16 - 1),
                st.sampled_from("0123456789X"))
mobiles = st.integers(3 * 10**9, 10**10 - 1).map(lambda n: f"1{n}")  # 1[3-9] and 9 digits
landlines = st.builds(lambda area, n: f"0{area}-{n}", st.integers(10, 999),
                      st.integers(2_000_000, 89_999_999))
emails = st.builds(lambda user, host, tld: f"{user}@{host}.{tld}",
                   st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._", min_size=3,
                           max_size=12).map(lambda s: "z" + s),
                   st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=9),
                   st.sampled_from(["com", "cn", "net", "edu.cn"]))
addresses = st.builds(
    lambda city, street, no: f"{city}{street}路{no}号",
    st.sampled_from(["上海市徐汇区", "北京市海淀区", "江苏省南京市鼓楼区", "上海市浦东新区"]),
    st.text(alphabet="漕溪北中山东南西华夏长江黄河", min_size=2, max_size=5),
    st.integers(1, 9999))
separators = st.sampled_from(["", " ", "：", ":", "，", "号", "tel", "#", "(", "mail "])


class Person:
    """The personal data planted in one payload (what must never be seen whole)."""

    def __init__(self, draw):
        self.values = {"id": draw(ids), "mobile": draw(mobiles), "phone": draw(landlines),
                       "email": draw(emails), "address": draw(addresses)}
        self.draw = draw

    def text(self) -> str:
        """Free text mentioning this person's numbers and e-mail."""
        d, v = self.draw, self.values
        return (f"核实{d(separators)}{v['id']}{d(separators)}联系{d(separators)}{v['mobile']}"
                f"{d(separators)}邮件{d(separators)}{v['email']} 完")

    def nested(self) -> dict:
        """A free-form dictionary as the services fill them."""
        v = self.values
        return {"id_type": "resident_id", "id_number": v["id"], "mobile": v["mobile"],
                "name": "王建国", "note": self.text(),
                "contact": {"email": v["email"], "address": v["address"], "phone": v["phone"],
                            "postcode": "200030"},
                "entries": [{"employer": "上海计量所", "address": v["address"]}],
                "payload": {"candidate": {"id_number": v["id"], "mobile": v["mobile"]}}}

    def whole(self) -> list[str]:
        return list(self.values.values())


def _kind(name: str) -> str | None:
    for suffix, kind in _PERSONAL_SUFFIXES.items():
        if name == suffix or name.endswith("_" + suffix):
            return kind
    return None


def value_for(name: str, field, person: Person):
    if isinstance(field, fields.Nested):
        one = payload_for(field.schema, person)
        return [one, payload_for(field.schema, person)] if field.many else one
    if isinstance(field, fields.List):
        return [value_for(name, field.inner, person) for _ in range(2)]
    if isinstance(field, fields.Dict):
        return person.nested()
    if isinstance(field, fields.Boolean):
        return True
    if isinstance(field, fields.Integer):
        return 1
    if isinstance(field, fields.Float | fields.Number):
        return 1.5
    if isinstance(field, fields.AwareDateTime | fields.DateTime):
        return "2026-04-07T10:00:00+08:00"
    if isinstance(field, fields.Date):
        return "2026-04-07"
    if isinstance(field, fields.String):
        kind = _kind(name)
        if kind is not None:
            return person.values[kind]
        if name.endswith(OWN_IDS):
            return "0f" * 16
        return person.text()
    return [[person.text(), person.text(), 60]]  # a custom field (score rows): text inside


def payload_for(schema, person: Person) -> dict:
    return {(f.data_key or n): value_for(n, f, person) for n, f in schema.fields.items()}


def _views(service: str, event: dict) -> dict[str, str]:
    logs = io.StringIO()
    klogging.configure(stream=logs, level="INFO")
    try:
        klogging.get_logger("t").info("event.seen", seen=event, payload=event["payload"])
    finally:
        klogging.configure(level="WARNING")
    return {"ops API": json.dumps(mask(event), ensure_ascii=False),
            "kaowu events": line(event, service, width=100_000),
            "kaowu events --json": as_json(event),
            "log": logs.getvalue()}


@settings(max_examples=1, deadline=None)
@given(data=st.data())
def test_every_service_registry_is_covered(data):
    assert {t for _, t in EVENT_TYPES} >= set(INTEGRATION.names())
    assert len(EVENT_TYPES) > 60
    # and the generator does plant personal data in the events that carry some
    person = Person(data.draw)
    carrying = {t for service, t in EVENT_TYPES if any(
        v in json.dumps(payload_for(REGISTRIES[service].get(t).schema, person),
                        ensure_ascii=False) for v in person.whole())}
    assert {"AccountRegistered", "ProfileUpdated", "ApplicationSubmitted", "CaseOpened",
            "RecipientRecorded", "CollectorIdentified", "IntegrityRecordWritten",
            "EventDeadLettered", "CandidateProfileUpdated"} <= carrying


@pytest.mark.parametrize("service, event_type", EVENT_TYPES)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_personal_data_whole_in_any_operator_view(service, event_type, data):
    person = Person(data.draw)
    schema = REGISTRIES[service].get(event_type).schema
    event = {"position": 7, "type": event_type, "stream_id": f"{event_type}-0f0f",
             "stream_version": 1, "service": service,
             "metadata": {"occurred_at": "2026-04-07T02:00:00+00:00", "correlation_id": "c" * 32},
             "payload": payload_for(schema, person)}
    planted = json.dumps(event, ensure_ascii=False)
    whole = [v for v in person.whole() if v in planted]
    for view, text in _views(service, event).items():
        for value in whole:
            assert value not in text, f"{event_type}: {value!r} whole in {view}: {text[:400]}"
