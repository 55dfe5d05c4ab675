"""The compiled payload checks (shared.contracts.check) against marshmallow itself.

Two properties, over every event type of every service's registry:

- sound: whatever the check accepts, the schema's ``load`` accepts (payloads of any JSON
  shape, including wrong types, missing and unknown keys, None, boundary lengths);
- complete where it should be: on payloads whose values have each field's own JSON type,
  the check accepts exactly what ``load`` accepts (so the fast path is actually taken).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.account.schemas import REGISTRY as ACCOUNT
from services.admission.schemas import REGISTRY as ADMISSION
from services.certificate.schemas import REGISTRY as CERTIFICATE
from services.notification.schemas import REGISTRY as NOTIFICATION
from services.registration.schemas import REGISTRY as REGISTRATION
from services.scoring.schemas import REGISTRY as SCORING
from services.verification.schemas import REGISTRY as VERIFICATION
from shared.contracts import EventRegistry
from shared.contracts.check import compile_schema
from shared.errors import ValidationFailed
from tests.strategies import JSON, payloads

REGISTRIES = (ACCOUNT, ADMISSION, CERTIFICATE, NOTIFICATION, REGISTRATION, SCORING, VERIFICATION)
TYPES = {}
for _r in REGISTRIES:
    for _name in _r.names():
        TYPES.setdefault(_name, _r.get(_name))

# types marshmallow checks alone, and why; a new one here should be a decision, not an accident
NOT_COMPILED = {
    "ScoreRowsRecorded": "ScoreRows, a field with its own one-pass check of 1,000 rows",
    "IntegrityRecordListed": "dates (fields.Date); one per archive record, when verification starts",
}


def _accepts(schema, payload) -> bool:
    try:
        schema.load(payload)
    except ValidationError:
        return False
    return True


# -- the properties ---------------------------------------------------------------------------------

def test_every_event_type_is_compiled_but_the_listed():
    assert len(TYPES) > 60
    not_compiled = {name for name, et in TYPES.items() if et.check is None}
    assert not_compiled == set(NOT_COMPILED)


COMPILED = sorted(name for name, et in TYPES.items() if et.check is not None)
FAST = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("name", COMPILED)
@FAST
@given(data=st.data())
def test_what_the_check_accepts_marshmallow_accepts(name, data):
    et = TYPES[name]
    payload = data.draw(payloads(et.schema, typed_only=False) | JSON)
    if et.check(payload):
        assert _accepts(et.schema, payload), payload


@pytest.mark.parametrize("name", COMPILED)
@FAST
@given(data=st.data())
def test_on_payloads_of_the_fields_own_types_the_check_is_marshmallow(name, data):
    et = TYPES[name]
    payload = data.draw(payloads(et.schema, typed_only=True))
    assert et.check(payload) == _accepts(et.schema, payload), payload


# -- the edges, one by one -------------------------------------------------------------------------

class Edges(Schema):
    code = fields.String(required=True, validate=validate.Length(min=2, max=4))
    kind = fields.String(required=True, validate=validate.OneOf(("a", "b")))
    n = fields.Integer(required=True, validate=validate.Range(0, 10, max_inclusive=False))
    x = fields.Float(load_default=None, allow_none=True)
    flag = fields.Boolean()
    at = fields.AwareDateTime()
    tags = fields.List(fields.String(), validate=validate.Length(max=2))
    data = fields.Dict(keys=fields.String())


GOOD = {"code": "ab", "kind": "a", "n": 0}


@pytest.mark.parametrize("payload, ok", [
    (GOOD, True),
    ({**GOOD, "code": "a"}, False), ({**GOOD, "code": "abcde"}, False), ({**GOOD, "code": "abcd"}, True),
    ({**GOOD, "kind": "c"}, False),
    ({**GOOD, "n": 10}, False), ({**GOOD, "n": 9}, True), ({**GOOD, "n": -1}, False),
    ({**GOOD, "n": True}, False), ({**GOOD, "n": 1.0}, None),  # 1.0: marshmallow's call
    ({**GOOD, "x": None}, True), ({**GOOD, "x": 2}, True), ({**GOOD, "x": float("nan")}, False),
    ({**GOOD, "x": 2**60}, None),
    ({**GOOD, "flag": None}, False), ({**GOOD, "flag": 1}, None),
    ({**GOOD, "at": "2026-11-28T10:00:00+08:00"}, True), ({**GOOD, "at": "2026-11-28T10:00:00"}, False),
    ({**GOOD, "at": "2026-11-28T10:00:00Z"}, True), ({**GOOD, "at": ""}, False),
    ({**GOOD, "tags": ["a", "b"]}, True), ({**GOOD, "tags": ["a", "b", "c"]}, False),
    ({**GOOD, "tags": ["a", None]}, False), ({**GOOD, "tags": ("a",)}, None),
    ({**GOOD, "data": {"k": [1, {"z": None}]}}, True), ({**GOOD, "data": {1: "v"}}, False),
    ({**GOOD, "other": 1}, False), ({"code": "ab", "kind": "a"}, False), ([GOOD], False),
])
def test_edges(payload, ok):
    """``ok`` None: the check leaves it to marshmallow (answers False); else it must agree."""
    check = compile_schema(Edges())
    accepted = _accepts(Edges(), payload)
    if ok is None:
        assert check(payload) is False
    else:
        assert check(payload) is ok
        assert accepted is ok


class WithHook(Schema):
    section = fields.String(required=True)
    data = fields.Dict(required=True)

    @validates_schema
    def _only_small(self, payload, **kwargs):
        if payload["section"] == "photo" and len(payload["data"]) > 1:
            raise ValidationError("too much", "data")


class HookOverDates(WithHook):
    at = fields.AwareDateTime(required=True)


def test_a_schema_validator_runs_on_the_payload():
    check = compile_schema(WithHook())
    assert check({"section": "photo", "data": {"a": 1}})
    assert not check({"section": "photo", "data": {"a": 1, "b": 2}})


def test_what_the_check_cannot_mirror_is_left_to_marshmallow():
    assert compile_schema(HookOverDates()) is None  # the hook would see datetimes

    class Custom(Schema):
        email = fields.Email(required=True)
    assert compile_schema(Custom()) is None

    class Unknown(Schema):
        v = fields.String(validate=lambda s: s.isdigit())
    assert compile_schema(Unknown()) is None


def test_the_registry_still_words_the_errors():
    registry = EventRegistry()
    registry.register("Edge", Edges)
    assert registry.validate("Edge", GOOD) == GOOD
    with pytest.raises(ValidationFailed) as err:
        registry.validate("Edge", {**GOOD, "n": 11})
    assert "n" in err.value.fields
    # what only marshmallow accepts still passes (by marshmallow)
    assert registry.validate("Edge", {**GOOD, "n": "3"})
