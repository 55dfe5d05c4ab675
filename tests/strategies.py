"""Hypothesis strategies for event payloads, derived from their marshmallow schemas."""

from __future__ import annotations

import datetime as dt
import math

from hypothesis import strategies as st
from marshmallow import fields, validate

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


def payloads(schema, *, typed_only: bool, complete: bool = False) -> st.SearchStrategy:
    """A payload: each field present (usually) with a typed value, or — when not
    ``typed_only`` — any JSON value, None, or left out; sometimes an unknown key.
    ``complete``: every required field present."""
    return _payload(schema, typed_only, complete)


@st.composite  # defined once: hypothesis reads a composite's source where it is defined
def _payload(draw, schema, typed_only: bool, complete: bool):
    out = {}
    for name, f in schema.load_fields.items():
        key = f.data_key or name
        choice = draw(st.integers(0, 9))
        if choice == 0 and not (complete and f.required):
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
