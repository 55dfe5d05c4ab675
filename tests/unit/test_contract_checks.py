"""The compiled payload checks (shared.contracts.check) against marshmallow itself.

Two properties, over every event type of every service's registry:

- sound: whatever the check accepts, the schema's ``load`` accepts (payloads of any JSON
  shape, including wrong types, missing and unknown keys, None, boundary lengths);
- complete where it should be: on payloads whose values have each field's own JSON type,
  the check accepts exactly what ``load`` accepts (so the fast path is actually taken).
"""

from __future__ import annotations

import datetime as dt
import math

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

REGISTRIES = (ACCOUNT, ADMISSION, CERTIFICATE, NOTIFICATION, REGISTRATION, SCORING, VERIFICATION)
TYPES = {}
for _r in REGISTRIES:
    for _name in _r.names():
        TYPES.setdefault(_name, _r.get(_name))

# types marshmallow checks alone, and why; a new one here should be a decision, not an accident
NOT_COMPILED = {
    "ScoreRowsRecorded": "ScoreRows, a field with its own one-pass check of 1,000 rows",
}


def _accepts(schema, payload) -> bool:
    try:
        schema.load(payload)
    except ValidationError:
        return False
    return True


# -- strategies from the schema -----------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def _text_for(f):
    lo, hi = 0, 12
    for v in f.validators:
        if isinstance(v, validate.OneOf):
            return st.sampled_from(list(v.choices)) | st.text(max_size=4)
        if isinstance(v, validate.Equal):
            return st.just(v.comparable)
        if isinstance(v, validate.Length):
            if v.equal is not None:
                lo = hi = v.equal
            else:
                lo, hi = v.min or 0, v.max if v.max is not None else 12
    # around the bounds: one short of the minimum to one past the maximum
    return st.text(min_size=max(0, lo - 1), max_size=min(hi + 1, lo + 40))


def _number_for(f, integers: bool):
    lo = hi = None
    for v in f.validators:
        if isinstance(v, validate.Range):
            lo, hi = v.min, v.max
        if isinstance(v, validate.Equal):
            return st.just(v.comparable) | st.integers(-2, 200)
    lo = -1000 if lo is None else math.floor(lo) - 1
    hi = 1000 if hi is None else math.ceil(hi) + 1
    if integers:
        return st.integers(lo, hi)
    return st.integers(lo, hi) | st.floats(lo, hi, allow_nan=False)


def _datetimes():
    offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
    aware = st.datetimes(timezones=offsets).map(lambda d: d.isoformat())
    naive = st.datetimes().map(lambda d: d.isoformat())
    return aware | naive | st.sampled_from(["", "2026-13-01T00:00:00+08:00", "tomorrow"])


def typed(f) -> st.SearchStrategy:
    """Values of the field's own JSON type (valid or not by its validators)."""
    if isinstance(f, fields.Nested):
        one = payloads(f.schema, typed_only=True)
        return st.lists(one, max_size=3) if f.many else one
    if isinstance(f, fields.List):
        return st.lists(typed(f.inner), max_size=4)
    if isinstance(f, fields.Dict):
        keys = typed(f.key_field) if f.key_field else st.text(max_size=5)
        values = typed(f.value_field) if f.value_field else JSON
        return st.dictionaries(keys, values, max_size=4)
    if isinstance(f, fields.AwareDateTime):
        return _datetimes()
    if isinstance(f, fields.Boolean):
        return st.booleans()
    if isinstance(f, fields.Integer):
        return _number_for(f, integers=True)
    if isinstance(f, fields.Float):
        return _number_for(f, integers=False)
    if isinstance(f, fields.String):
        return _text_for(f)
    return JSON


def payloads(schema, *, typed_only: bool) -> st.SearchStrategy:
    """A payload: each field present (usually) with a typed value, or — when not
    ``typed_only`` — any JSON value, None, or left out; sometimes an unknown key."""
    @st.composite
    def build(draw):
        out = {}
        for name, f in schema.load_fields.items():
            key = f.data_key or name
            choice = draw(st.integers(0, 9))
            if choice == 0:
                continue  # missing
            if choice == 1 and (f.allow_none or not typed_only):
                out[key] = None
            elif choice == 2 and not typed_only:
                out[key] = draw(JSON)
            else:
                out[key] = draw(typed(f))
        if not typed_only and draw(st.integers(0, 9)) == 0:
            out[draw(st.text(min_size=1, max_size=6))] = draw(JSON)
        return out
    return build()


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
