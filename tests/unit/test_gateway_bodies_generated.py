"""The OpenAPI document's request bodies are made from the marshmallow schemas the services
load their input with (services.gateway.from_marshmallow): never stricter than a service
(whatever a service accepts in its plain form, the document accepts), and as strict as a
JSON Schema can say (the same bounds, choices, required fields, unknown fields refused)."""

import unicodedata

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields, validate

from services.account import schemas as account
from services.admission import schemas as admission
from services.certificate import schemas as certificate
from services.gateway import schemas as bodies
from services.gateway.from_marshmallow import TEXT_PATTERN, schema_of
from services.registration import schemas as registration
from services.scoring import schemas as scoring
from services.verification import schemas as verification
from shared.fields import Text
from tests.strategies import payloads
from tests.support import validate_json

# each body of the document, the schema its service loads it with, and what the gateway
# takes from the path instead
SOURCES = {
    "REGISTER": (account.RegisterSchema, ()),
    "LOGIN": (account.LoginSchema, ()),
    "CHANGE_PASSWORD": (account.ChangePasswordSchema, ()),
    "APPLICATION": (registration.SubmitApplicationSchema, ()),
    "SESSION_YAML": (registration.LoadSessionSchema, ()),
    "AMENDMENT": (registration.AmendTimetableSchema, ("session_id",)),
    "VOID_REGISTRATION": (registration.VoidRegistrationSchema, ("application_id",)),
    "ENQUIRY": (verification.RaiseEnquirySchema, ("session_id",)),
    "MANUAL_DECISION": (verification.ManualDecisionSchema, ("application_id",)),
    "ENQUIRY_ANSWER": (verification.AnswerEnquirySchema, ("enquiry_id",)),
    "SPOT_CHECK_DRAW": (verification.SpotCheckDrawSchema, ("session_id",)),
    "SPOT_CHECK_DECISION": (verification.SpotCheckDecisionSchema, ("application_id",)),
    "CHECK_IN": (admission.CheckInSchema, ()),
    "VOID_SCORES": (scoring.VoidScoresSchema, ()),
    "REVOKE": (certificate.RevokeSchema, ("certificate_number",)),
    "PICKUP_NOTICE": (certificate.PickupNoticeSchema, ("session_id",)),
    "COLLECTION": (certificate.CollectionSchema, ("certificate_number",)),
    "VERIFY": (certificate.VerifySchema, ()),
    "RESET_START": (account.ResetStartSchema, ()),
    "RESET_FINISH": (account.ResetFinishSchema, ()),
    "RULES_DOCUMENT": (verification.LoadRulesSchema, ("exam_year",)),
    **{f"section {s}": (getattr(account, f"{s.title()}Schema"), ())
       for s in ("basic", "education", "work", "contact")},
}


def _body(name):
    return bodies.PROFILE_SECTIONS[name.split()[1]] if name.startswith("section ") \
        else getattr(bodies, name)


def test_every_body_is_the_services_schema():
    for name, (source, path) in SOURCES.items():
        assert _body(name) == schema_of(source, exclude=set(path)), name
    described = {n for n in dir(bodies) if n.isupper() and isinstance(getattr(bodies, n), dict)
                 and getattr(bodies, n).get("type") == "object"}
    assert described <= set(SOURCES), described - set(SOURCES)  # none written by hand


def _plain(value) -> bool:
    """Already in the form the service keeps (stripped NFC text, no blank): the document
    describes that form (it cannot say "trimmed before counting")."""
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, str):
        return value == unicodedata.normalize("NFC", value).strip() and value != ""
    return True


@pytest.mark.parametrize("name", sorted(SOURCES))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_what_a_service_accepts_the_document_accepts(name, data):
    source, path = SOURCES[name]
    payload = data.draw(payloads(source(), typed_only=True, complete=True))
    payload = {k: v for k, v in payload.items() if k not in path}
    loaded = {**payload, **{k: "x1" for k in path}}
    try:
        source().load(loaded)
    except (ValidationError, ValueError, TypeError):
        return  # refused by the service: the document may say anything
    if _plain(payload):
        validate_json(payload, _body(name), formats=True)


class Sample(Schema):
    code = Text(max_length=8, required=True, validate=validate.Regexp(r"[A-Z]+\Z"))
    note = Text(max_length=20, allow_none=True)
    kind = fields.String(validate=validate.OneOf(["a", "b"]))
    n = fields.Integer(strict=True, validate=validate.Range(min=1, max=5))
    tags = fields.List(Text(max_length=4), validate=validate.Length(max=2))
    when = fields.AwareDateTime()
    day = fields.Date()


def test_what_the_converter_says():
    got = schema_of(Sample)
    assert got["required"] == ["code"] and got["additionalProperties"] is False
    p = got["properties"]
    assert p["code"] == {"type": "string", "minLength": 1, "maxLength": 8,
                         "pattern": "^(?:[A-Z]+$)"}
    assert p["note"] == {"type": ["string", "null"], "minLength": 1, "maxLength": 20,
                         "pattern": TEXT_PATTERN}
    assert p["kind"] == {"type": "string", "enum": ["a", "b"]}
    assert p["n"] == {"type": "integer", "minimum": 1, "maximum": 5}
    assert p["tags"]["maxItems"] == 2 and p["tags"]["items"]["maxLength"] == 4
    assert p["when"]["format"] == "date-time" and p["day"]["format"] == "date"
    for bad in ({"code": "ab"}, {"code": "AB", "n": 9}, {"code": "AB", "tags": ["a", "b", "c"]},
                {"code": "AB", "extra": 1}, {"code": "A\u0007"}, {}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, got)
        with pytest.raises(ValidationError):
            Sample().load(bad)
