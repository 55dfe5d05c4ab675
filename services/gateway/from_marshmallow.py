"""JSON Schemas (2020-12, as OpenAPI 3.1 uses them) made from the marshmallow schemas the
services load their input with, so the OpenAPI document says what the services enforce,
and from the reply schemas every answer is dumped through (``dump=True``: the fields a
dump writes; ``required`` ones are always there), so it says what is sent.

What marshmallow checks and JSON Schema can say is carried over: types, required fields,
unknown fields refused (marshmallow's default), ``null`` where ``allow_none``, string
lengths, ``OneOf``/``Equal``/``Range``/``Length``/``Regexp``/``Email`` validators, nested
schemas and lists, dates and times. ``shared.fields.Text`` refuses control and invisible
formatting characters (``TEXT_PATTERN``). A field may add what only its code checks with a
``json_schema`` attribute (a dict merged in). A schema whose class sets
``blank_means_unset`` (a profile draft) admits a blank (null or white space) for each
optional field; a ``Text`` field with ``multiline`` admits line breaks.
What only code can check (ID check digits, "exactly one of") stays with the services,
which answer 400 with the field.
"""

from __future__ import annotations

import re
import sys
import unicodedata

from marshmallow import Schema, fields, validate

from shared.fields import Text


def _no_control_pattern() -> str:
    """A pattern refusing what ``shared.fields.Text`` refuses in every service: control
    (Cc) and invisible formatting (Cf) characters, as one character class."""
    ranges, start = [], None
    for cp in range(sys.maxunicode + 2):
        bad = cp <= sys.maxunicode and unicodedata.category(chr(cp)) in ("Cc", "Cf")
        if bad and start is None:
            start = cp
        elif not bad and start is not None:
            ranges.append((start, cp - 1))
            start = None

    def char(cp):
        return f"\\u{cp:04x}" if cp <= 0xFFFF else chr(cp)

    return "^[^" + "".join(char(a) if a == b else f"{char(a)}-{char(b)}"
                           for a, b in ranges) + "]*$"


#: text in a path or a query string, as the services accept it
TEXT_PATTERN = _no_control_pattern()

_BLANK = {"anyOf": [{"type": "null"}, {"type": "string", "pattern": "^\\s*$"}]}


def _pattern(regex) -> str:
    """A Python ``re.match`` pattern as an anchored JSON Schema pattern."""
    text = regex.pattern if hasattr(regex, "pattern") else str(regex)
    text = text.replace("\\Z", "$").replace("\\A", "^")
    return text if text.startswith("^") else "^(?:" + text + ")"


def _validators(field, schema: dict, is_array: bool = False) -> dict:
    for v in field.validators:
        if isinstance(v, validate.OneOf):
            schema["enum"] = list(v.choices)
        elif isinstance(v, validate.Equal):
            schema["const"] = v.comparable
        elif isinstance(v, validate.Range):
            if v.min is not None:
                schema["minimum" if v.min_inclusive else "exclusiveMinimum"] = v.min
            if v.max is not None:
                schema["maximum" if v.max_inclusive else "exclusiveMaximum"] = v.max
        elif isinstance(v, validate.Length):
            low, high = ("minItems", "maxItems") if is_array else ("minLength", "maxLength")
            if v.equal is not None:
                schema[low] = schema[high] = v.equal
            else:
                if v.min is not None:
                    schema[low] = max(v.min, schema.get(low, 0))
                if v.max is not None:
                    schema[high] = min(v.max, schema.get(high, v.max))
        elif isinstance(v, validate.Regexp):
            schema["pattern"] = _pattern(v.regex)
        elif isinstance(v, validate.Email):
            schema["format"] = "email"
    return schema


def field_schema(field, dump: bool = False) -> dict:
    """The JSON Schema of one marshmallow field (``dump``: as a dump writes it)."""
    if isinstance(field, fields.Nested):
        inner = schema_of(field.schema, dump=dump, as_item=True)
        out = {"type": "array", "items": inner} if field.many else inner
    elif isinstance(field, fields.List):
        out = _validators(field, {"type": "array", "items": field_schema(field.inner, dump)},
                          is_array=True)
    elif isinstance(field, fields.Dict):
        out = {"type": "object"}
        if field.value_field is not None:
            out["additionalProperties"] = field_schema(field.value_field, dump)
    elif isinstance(field, fields.Boolean):
        out = {"type": "boolean"}
    elif isinstance(field, fields.Integer):
        out = _validators(field, {"type": "integer"})
    elif isinstance(field, fields.Number):
        out = _validators(field, {"type": "number"})
    elif isinstance(field, fields.AwareDateTime | fields.DateTime):
        out = {"type": "string", "format": "date-time"}
    elif isinstance(field, fields.Date):
        out = {"type": "string", "format": "date"}
    elif isinstance(field, fields.String):
        out = {"type": "string"}
        if isinstance(field, Text):
            out.update(minLength=field.min_length, maxLength=field.max_length)
            if not getattr(field, "multiline", False):  # line breaks allowed: no pattern
                out["pattern"] = TEXT_PATTERN
        if isinstance(field, fields.Email):
            out["format"] = "email"
        out = _validators(field, out)
    else:
        out = {}
    out.update(getattr(field, "json_schema", None) or {})
    if field.allow_none and "type" in out:
        out["type"] = [out["type"], "null"]
    elif field.allow_none:
        out = {"anyOf": [out, {"type": "null"}]}
    description = (field.metadata or {}).get("description")
    if description:
        out["description"] = description
    return out


def schema_of(schema: Schema | type[Schema], exclude=(), dump: bool = False,
              as_item: bool = False) -> dict:
    """An object schema for a marshmallow schema's input (``data_key`` names), less the
    ``exclude``d fields (those the gateway takes from the path or the token); ``dump``: for
    what it writes (a reply), an array of them for a ``many`` schema."""
    schema = schema() if isinstance(schema, type) else schema
    if dump and schema.many and not as_item:
        return {"type": "array", "items": schema_of(type(schema)(), exclude, dump=True)}
    blanks = getattr(schema, "blank_means_unset", False) and not dump
    properties, required = {}, []
    for name, field in (schema.dump_fields if dump else schema.load_fields).items():
        if name in exclude:
            continue
        key = field.data_key or name
        prop = field_schema(field, dump)
        properties[key] = {"anyOf": [prop, _BLANK]} if blanks and not field.required else prop
        if field.required:
            required.append(key)
    out = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        out["required"] = required
    doc = (type(schema).__doc__ or "").strip().split("\n\n")[0]
    if doc:
        out["description"] = re.sub(r"\s+", " ", doc)
    return out
