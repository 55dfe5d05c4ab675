"""The gateway's request bodies (JSON Schemas, 2020-12, as OpenAPI 3.1 uses them) and the
reply schemas of the answers it makes itself (marshmallow).

The services validate every input themselves (marshmallow, ``shared.service.load``) and the
gateway forwards what they refuse as ``validation_failed``. The request bodies here are
made from those very marshmallow schemas (``from_marshmallow.schema_of``), so the OpenAPI
document (``GET /api/openapi.json``) can be neither looser nor stricter than what a
service checks, as far as a JSON Schema can say it; what only code checks (an ID number's
check digit, "exactly one of") the service answers with 400 and the field. Only the
uploads are written here as JSON Schemas.

Every JSON answer is dumped through a marshmallow reply schema (``@route(reply=...)``): the
services' own (each service's ``schemas.py``) or, for what the gateway puts together, those
below; the document's answers are made from them.
"""

from marshmallow import Schema, fields, validate

from services.account import schemas as account
from services.admission import schemas as admission
from services.certificate import schemas as certificate
from services.gateway.from_marshmallow import schema_of
from services.registration import schemas as registration
from services.scoring import schemas as scoring
from services.verification import schemas as verification
from shared.contracts.account import SECTIONS
from shared.fields import Instant, nullable


def obj(properties: dict, required=(), **kw) -> dict:
    return {"type": "object", "properties": properties, "required": list(required),
            "additionalProperties": False, **kw}


# -- request bodies: made from the services' own marshmallow schemas -----------------------
# (path values and who acts come from the URL and the token: left out of the bodies)

REGISTER = schema_of(account.RegisterSchema)
LOGIN = schema_of(account.LoginSchema)
CHANGE_PASSWORD = schema_of(account.ChangePasswordSchema)

PROFILE_SECTIONS = {"basic": schema_of(account.BasicSchema),
                    "education": schema_of(account.EducationSchema),
                    "work": schema_of(account.WorkSchema),
                    "contact": schema_of(account.ContactSchema)}
# the photo is uploaded as a file (PUT /api/me/photo), never as JSON to a section
EDITABLE_SECTIONS = tuple(s for s in SECTIONS if s != "photo")
assert set(PROFILE_SECTIONS) == set(EDITABLE_SECTIONS)
PROFILE_SECTION = {"anyOf": [PROFILE_SECTIONS[s] for s in EDITABLE_SECTIONS],
                   "description": "the section named in the path: " + ", ".join(EDITABLE_SECTIONS)}

APPLICATION = schema_of(registration.SubmitApplicationSchema)
SESSION_YAML = schema_of(registration.LoadSessionSchema)
AMENDMENT = schema_of(registration.AmendTimetableSchema, exclude={"session_id"})
VOID_REGISTRATION = schema_of(registration.VoidRegistrationSchema, exclude={"application_id"})

ENQUIRY = schema_of(verification.RaiseEnquirySchema, exclude={"session_id"})
MANUAL_DECISION = schema_of(verification.ManualDecisionSchema, exclude={"application_id"})
ENQUIRY_ANSWER = schema_of(verification.AnswerEnquirySchema, exclude={"enquiry_id"})
SPOT_CHECK_DRAW = schema_of(verification.SpotCheckDrawSchema, exclude={"session_id"})
SPOT_CHECK_DECISION = schema_of(verification.SpotCheckDecisionSchema, exclude={"application_id"})

CHECK_IN = schema_of(admission.CheckInSchema)
VOID_SCORES = schema_of(scoring.VoidScoresSchema)

REVOKE = schema_of(certificate.RevokeSchema, exclude={"certificate_number"})
PICKUP_NOTICE = schema_of(certificate.PickupNoticeSchema, exclude={"session_id"})
COLLECTION = schema_of(certificate.CollectionSchema, exclude={"certificate_number"})
VERIFY = schema_of(certificate.VerifySchema)

RULES_DOCUMENT = schema_of(verification.LoadRulesSchema, exclude={"exam_year"})

RESET_START = schema_of(account.ResetStartSchema)
RESET_FINISH = schema_of(account.ResetFinishSchema)

# -- uploads (multipart/form-data or a raw body) -------------------------------------------

BINARY = {"type": "string", "contentMediaType": "application/octet-stream"}


def upload(field: str, many: int = 0) -> dict:
    """A multipart form with the file(s) as ``field``; ``many``: up to that many files."""
    item = {"type": "string", "format": "binary"}
    return obj({field: {"type": "array", "items": item, "minItems": 1, "maxItems": many}
                if many else item}, [field])


# -- answers the gateway puts together ----------------------------------------------------

S, Int, B, L, D = fields.String, fields.Integer, fields.Boolean, fields.List, fields.Dict
ROLES = ("candidate", "staff", "authority", "operator")


class SignedInAccountReply(Schema):
    account_id, name, username = S(required=True), S(required=True), S(required=True)
    role = S(required=True, validate=validate.OneOf(ROLES))
    registration_point = nullable(S)
    completeness = Int(metadata={"description": "candidates: the profile's completeness"})


class TokenReply(Schema):
    """A bearer token (15 minutes) and who it signs in."""

    token = S(required=True)
    token_type = S(required=True, validate=validate.Equal("Bearer"))
    expires_at = Int(required=True, metadata={"description": "seconds since the epoch"})
    expires_in = Int(required=True)
    account = fields.Nested(SignedInAccountReply, required=True)


class WhoamiReply(Schema):
    """Who the token says you are, and when it expires (seconds since the epoch)."""

    account_id, name, username = S(required=True), S(required=True), S(required=True)
    role = S(required=True, validate=validate.OneOf(ROLES))
    registration_point = nullable(S)
    expires_at = Int(required=True)


class ProfileSectionReply(Schema):
    """One section of the profile (null before it is saved) and the completeness."""

    section = S(required=True)
    data = nullable(D, metadata={"description": "the section as saved"})
    completeness = Int(required=True)
    missing = L(S(), required=True)


class SessionNowReply(registration.SessionReply):
    """An exam session, with ``now``: the gateway's clock, so a page judges which windows
    are open by the server's time."""

    now = Instant(required=True)


class RegistrationAuditReply(registration.AuditRowReply):
    staff_name = nullable(S, metadata={"description": "null: no staff account has this id"})


class VerificationAuditReply(verification.AuditRowReply):
    staff_name = nullable(S, metadata={"description": "null: no staff account has this id"})


class AuditReply(Schema):
    """The audit trail of each service, newest first (null: the service did not answer)."""

    registration = fields.Nested(RegistrationAuditReply, many=True, required=True,
                                 allow_none=True)
    verification = fields.Nested(VerificationAuditReply, many=True, required=True,
                                 allow_none=True)


class OpsStatusReply(Schema):
    """Every service's status (up or down, log head, relay and consumer lags)."""

    services = D(keys=S(), values=D(), required=True)


class DashboardReply(Schema):
    """The dashboard's figures (services/gateway/dashboard.py: shape)."""

    now = Instant(required=True)
    sessions = L(D(), required=True)
    session = nullable(D, metadata={"description": "phase, next deadline, windows"})
    funnel = L(D(), required=True)
    applications, cases, enquiries = D(required=True), D(required=True), D(required=True)
    admission, scoring, certificates = D(required=True), D(required=True), D(required=True)
    notifications, accounts = D(required=True), D(required=True)
    manual_queues = L(D(), required=True)
    arrivals = nullable(D)
    services = D(required=True)


class ReadinessReply(Schema):
    """ready, or which of its dependencies is down."""

    service, status = S(required=True), S(required=True, validate=validate.OneOf(
        ["ready", "unavailable"]))
    down = L(S(), required=True)
    checks = D(keys=S(), values=S(), required=True)


class OpenApiReply(Schema):
    """This document."""

    openapi, jsonSchemaDialect = S(required=True), S(required=True)
    info, components, paths = D(required=True), D(required=True), D(required=True)
    servers = L(D(), required=True)
