"""JSON Schemas (2020-12, as OpenAPI 3.1 uses them) of the gateway's request bodies and of
its common answers.

The services validate every input themselves (marshmallow, ``shared.service.load``) and the
gateway forwards what they refuse as ``validation_failed``. The request bodies here are
made from those very marshmallow schemas (``from_marshmallow.schema_of``), so the OpenAPI
document (``GET /api/openapi.json``) can be neither looser nor stricter than what a
service checks, as far as a JSON Schema can say it; what only code checks (an ID number's
check digit, "exactly one of") the service answers with 400 and the field. Only the
gateway's own shapes (uploads, the error, the token) are written here.
"""

from services.account import schemas as account
from services.admission import schemas as admission
from services.certificate import schemas as certificate
from services.gateway.from_marshmallow import schema_of
from services.registration import schemas as registration
from services.scoring import schemas as scoring
from services.verification import schemas as verification
from shared.contracts.account import SECTIONS


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
RESET_STARTED = obj({"accepted": {"const": True}, "message": {"type": "string"}},
                    ["accepted", "message"])

# -- uploads (multipart/form-data or a raw body) -------------------------------------------

BINARY = {"type": "string", "contentMediaType": "application/octet-stream"}


def upload(field: str, many: int = 0) -> dict:
    """A multipart form with the file(s) as ``field``; ``many``: up to that many files."""
    item = {"type": "string", "format": "binary"}
    return obj({field: {"type": "array", "items": item, "minItems": 1, "maxItems": many}
                if many else item}, [field])


# -- answers -------------------------------------------------------------------------------

ERROR = obj({"error": obj({
    "code": {"type": "string", "enum": None},  # filled from errors.CODES by openapi.py
    "message": {"type": "string"},
    "reason": {"type": "string", "description": "a service's finer code, e.g. locked"},
    "fields": {"type": "object", "additionalProperties": {"type": "string"}},
    "correlation_id": {"type": "string"},
}, ["code", "message", "correlation_id"])}, ["error"])

TOKEN = obj({
    "token": {"type": "string"}, "token_type": {"const": "Bearer"},
    "expires_at": {"type": "integer", "description": "seconds since the epoch"},
    "expires_in": {"type": "integer"},
    "account": obj({"account_id": {"type": "string"},
                    "role": {"type": "string", "enum": ["candidate", "staff", "authority",
                                                       "operator"]},
                    "name": {"type": "string"}, "username": {"type": "string"},
                    "registration_point": {"type": ["string", "null"]},
                    "completeness": {"type": "integer"}},
                   ["account_id", "role", "name", "username", "registration_point"]),
}, ["token", "token_type", "expires_at", "expires_in", "account"])
