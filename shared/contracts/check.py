"""Compiled payload checks: the event schemas' rules as plain Python closures.

Every append validates its payloads against their schema (``EventRegistry.validate``). A
marshmallow ``load`` of a ten-field payload costs ~50–150 µs, most of an append's CPU once
the commit is shared by a batch. The payloads are nearly always valid and JSON-plain, so a
check compiled from the same schema answers first: ``True`` means marshmallow would accept
the payload too; ``False`` means "not sure", and marshmallow decides and words the error.
The check is sound by construction (it accepts only exact JSON types whose marshmallow
load is the identity) and tested against marshmallow on every registered event type.

A schema with anything this module does not know (a custom field, a field hook, a
``pre_load``, a validator other than Length/OneOf/Range/Equal) is not compiled and is
always loaded by marshmallow.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

from marshmallow import EXCLUDE, INCLUDE, RAISE, Schema, fields, missing, validate
from marshmallow.decorators import VALIDATES, VALIDATES_SCHEMA

Check = Callable[[object], bool]

_MISSING = object()
_FLOAT_EXACT = 2**53  # ints a float holds exactly: past it, marshmallow's Range sees a rounded value


class NotCompiled(Exception):
    """The schema uses something the compiled check does not cover."""


def compile_schema(schema: Schema) -> Check | None:
    """The schema's check, or None if it cannot be compiled (marshmallow decides alone)."""
    try:
        return _schema_check(schema, unknown=schema.unknown)
    except NotCompiled:
        return None


# -- fields ---------------------------------------------------------------------------------

def _validators(f: fields.Field) -> list[Check]:
    out = []
    for v in f.validators:
        if type(v) is validate.Length:
            out.append(_length(v))
        elif type(v) is validate.OneOf:
            choices = v.choices
            out.append(lambda x, choices=choices: x in choices)
        elif type(v) is validate.Range:
            out.append(_range(v))
        elif type(v) is validate.Equal:
            comparable = v.comparable
            out.append(lambda x, c=comparable: x == c)
        else:
            raise NotCompiled(f"validator {type(v).__name__}")
    return out


def _length(v: validate.Length) -> Check:
    lo, hi, eq = v.min, v.max, v.equal
    if eq is not None:
        return lambda x: len(x) == eq
    lo = -1 if lo is None else lo
    hi = math.inf if hi is None else hi
    return lambda x: lo <= len(x) <= hi


def _range(v: validate.Range) -> Check:
    lo, hi, lo_in, hi_in = v.min, v.max, v.min_inclusive, v.max_inclusive

    def check(x):
        if lo is not None and (x < lo if lo_in else x <= lo):
            return False
        return not (hi is not None and (x > hi if hi_in else x >= hi))
    return check


def _is_str(x):
    return type(x) is str


def _is_int(x):
    return type(x) is int  # bool is not (marshmallow refuses True/False as numbers)


def _is_float(x):
    t = type(x)
    return (t is float and math.isfinite(x)) or (t is int and -_FLOAT_EXACT <= x <= _FLOAT_EXACT)


def _is_bool(x):
    return type(x) is bool


def _is_aware_iso(x):
    # what DateTime(format None/"iso") loads: datetime.fromisoformat; aware, as AwareDateTime wants
    if type(x) is not str:
        return False
    try:
        d = dt.datetime.fromisoformat(x)
    except ValueError:
        return False
    return d.tzinfo is not None and d.tzinfo.utcoffset(d) is not None


# field types whose load gives back the very value (or an equal one) it was given: a schema
# hook may then be run on the payload itself in place of the loaded data
_IDENTITY = (fields.String, fields.Integer, fields.Boolean, fields.Dict, fields.List, fields.Nested)


def _field_check(f: fields.Field) -> tuple[Check, bool]:
    """(check of a present, non-None value, whether the field's load is the identity)."""
    if f.pre_load or f.post_load:
        raise NotCompiled("field processors")
    t = type(f)
    if t is fields.String:
        base, identity = _is_str, True
    elif t is fields.Integer:
        base, identity = _is_int, True
    elif t is fields.Float:
        base, identity = _is_float, False  # 3 loads as 3.0
    elif t is fields.Boolean:
        base, identity = _is_bool, True
    elif t is fields.AwareDateTime:
        if f.format not in (None, "iso", "iso8601"):
            raise NotCompiled("datetime format")
        base, identity = _is_aware_iso, False
    elif t is fields.Dict:
        base, identity = _dict_check(f)
    elif t is fields.List:
        base, identity = _list_check(f)
    elif t is fields.Nested:
        base, identity = _nested_check(f)
    else:
        raise NotCompiled(f"field {t.__name__}")
    validators = _validators(f)
    if not validators:
        return base, identity
    if len(validators) == 1:
        (v,) = validators
        return (lambda x: base(x) and v(x)), identity
    return (lambda x: base(x) and all(c(x) for c in validators)), identity


def _value_check(f: fields.Field) -> tuple[Check, bool]:
    """A field inside a container: None only where the field allows it (every base check
    above refuses None)."""
    check, identity = _field_check(f)
    if f.allow_none:
        return (lambda x: x is None or check(x)), identity
    return check, identity


def _dict_check(f: fields.Dict) -> tuple[Check, bool]:
    key_check, key_identity = _value_check(f.key_field) if f.key_field else (None, True)
    value_check, value_identity = _value_check(f.value_field) if f.value_field else (None, True)

    def check(x):
        if type(x) is not dict:
            return False
        if key_check is not None and not all(map(key_check, x)):
            return False
        return value_check is None or all(map(value_check, x.values()))
    return check, key_identity and value_identity


def _list_check(f: fields.List) -> tuple[Check, bool]:
    inner, identity = _value_check(f.inner)

    def check(x):
        return type(x) is list and all(map(inner, x))
    return check, identity


def _nested_check(f: fields.Nested) -> tuple[Check, bool]:
    schema = f.schema  # the bound instance, with the field's only/exclude applied
    unknown = f.unknown or schema.unknown
    one = _schema_check(schema, unknown=unknown)
    identity = _schema_identity(schema)
    if f.many:
        return (lambda x: type(x) is list and all(map(one, x))), identity
    return one, identity


# -- schemas --------------------------------------------------------------------------------

def _schema_identity(schema: Schema) -> bool:
    return all(isinstance(f, _IDENTITY) and _field_check(f)[1] for f in schema.load_fields.values())


def _schema_check(schema: Schema, *, unknown: str) -> Check:
    if schema.many or schema.partial:
        raise NotCompiled("many/partial schema")
    hooks = schema._hooks
    if any(hooks.get(name) for name in hooks if name != VALIDATES_SCHEMA) or hooks.get(VALIDATES):
        raise NotCompiled("hooks other than validates_schema")
    specs = []
    identity = True
    for name, f in schema.load_fields.items():
        check, same = _field_check(f)
        identity = identity and same
        key = f.data_key if f.data_key is not None else name
        specs.append((key, f.required, f.allow_none, check))
    allowed = frozenset(key for key, *_ in specs)
    if unknown not in (RAISE, EXCLUDE, INCLUDE):
        raise NotCompiled(f"unknown={unknown!r}")
    refuse_unknown = unknown == RAISE

    validators = []
    for attr, pass_collection, kwargs in hooks.get(VALIDATES_SCHEMA, ()):
        # the hook must see what the load would give it: the payload itself, so only when
        # every field loads as the identity, unknown keys are refused (not dropped or kept)
        # and no missing field is filled with a default
        if pass_collection:
            raise NotCompiled("pass_collection schema validator")
        if not identity or not refuse_unknown:
            raise NotCompiled("schema validator over a load that is not the identity")
        if any(f.load_default is not missing for f in schema.load_fields.values()):
            raise NotCompiled("schema validator over defaulted fields")
        validators.append((getattr(schema, attr), kwargs.get("pass_original", False)))

    def check(payload) -> bool:
        if type(payload) is not dict:
            return False
        if refuse_unknown and not payload.keys() <= allowed:
            return False
        for key, required, allow_none, value_check in specs:
            value = payload.get(key, _MISSING)
            if value is _MISSING:
                if required:
                    return False
            elif value is None:
                if not allow_none:
                    return False
            elif not value_check(value):
                return False
        for validator, pass_original in validators:
            try:
                if pass_original:
                    validator(payload, payload, partial=None, many=False, unknown=unknown)
                else:
                    validator(payload, partial=None, many=False, unknown=unknown)
            except Exception:  # ValidationError, or a hook surprised: marshmallow decides
                return False
        return True
    return check
