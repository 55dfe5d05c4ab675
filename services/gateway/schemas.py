"""JSON Schemas (2020-12, as OpenAPI 3.1 uses them) of the gateway's request bodies and of
its common answers.

The services validate every input themselves (marshmallow, ``shared.service.load``) and the
gateway forwards what they refuse as ``validation_failed``; these schemas describe the
same inputs for clients, in the OpenAPI document (``GET /api/openapi.json``). The tests
validate every body they send against them, so the document stays true to what the
services accept. Enumerations come from the published language (``shared.contracts``).
"""

from shared.contracts.account import ID_TYPES, SECTIONS
from shared.contracts.registration import LEVELS, WINDOWS


def _str(max_length=None, **kw):
    s = {"type": "string", "minLength": 1}
    if max_length:
        s["maxLength"] = max_length
    return {**s, **kw}


def obj(properties: dict, required=(), **kw) -> dict:
    return {"type": "object", "properties": properties, "required": list(required),
            "additionalProperties": False, **kw}


DATE = {"type": "string", "format": "date"}
DATE_TIME = {"type": "string", "format": "date-time"}
NULLABLE_DATE = {"type": ["string", "null"], "format": "date"}
ANY_OBJECT = {"type": "object"}
ANY_ARRAY = {"type": "array", "items": {"type": "object"}}

# -- accounts ------------------------------------------------------------------------------

REGISTER = obj({
    "name": _str(50, description="姓名"),
    "id_type": {"type": "string", "enum": list(ID_TYPES)},
    "id_number": _str(32, description="证件号码 (a resident ID carries a GB 11643 check digit)"),
    "mobile": _str(20, description="手机号 (mainland, 11 digits)"),
    "username": {"type": "string", "pattern": "^[A-Za-z0-9_]{4,32}$"},
    "password": {"type": "string", "minLength": 8, "maxLength": 64,
                 "description": "at least one letter and one digit; not the username"},
}, ["name", "id_type", "id_number", "mobile", "username", "password"])

LOGIN = obj({"username": _str(32), "password": {"type": "string", "minLength": 1,
                                                "maxLength": 64}}, ["username", "password"])

CHANGE_PASSWORD = obj({"old_password": {"type": "string", "minLength": 1, "maxLength": 64},
                       "new_password": {"type": "string", "minLength": 8, "maxLength": 64}},
                      ["old_password", "new_password"])

RESET_START = obj({
    "username": _str(32, description="用户名"),
    "mobile": _str(20, description="the account's mobile (手机号): the code goes there"),
}, ["username", "mobile"])

RESET_FINISH = obj({
    "username": _str(32),
    "code": {"type": "string", "pattern": "^[0-9]{6}$", "description": "短信验证码"},
    "new_password": {"type": "string", "minLength": 8, "maxLength": 64,
                     "description": "at least one letter and one digit; not the username"},
}, ["username", "code", "new_password"])

RESET_STARTED = obj({"accepted": {"const": True}, "message": {"type": "string"}},
                    ["accepted", "message"])

# a draft: a blank value (null, or only white space) is "not filled in yet"
_BLANK = {"anyOf": [{"type": "null"}, {"type": "string", "pattern": "^\\s*$"}]}


def _draft(properties: dict) -> dict:
    return obj({k: {"anyOf": [v, _BLANK]} for k, v in properties.items()})


_EDUCATION_ENTRY = obj({
    "entry_id": _str(16),
    "level": {"type": "string", "enum": ["中专", "大专", "本科", "双学士", "研究生班", "硕士", "博士"]},
    "school": _str(60), "major": _str(60),
    "major_category": {"type": "string", "enum": ["science_engineering", "other"]},
    "graduated_on": DATE, "certificate_no": {"type": ["string", "null"], "maxLength": 40},
}, ["level", "school", "major", "major_category", "graduated_on"])
_DEGREE_ENTRY = obj({
    "entry_id": _str(16), "degree": {"type": "string", "enum": ["学士", "硕士", "博士"]},
    "school": _str(60), "major": _str(60), "awarded_on": DATE,
    "certificate_no": {"type": ["string", "null"], "maxLength": 40},
}, ["degree", "school", "major", "awarded_on"])
_WORK_ENTRY = obj({
    "entry_id": _str(16), "employer": _str(100), "position": _str(50), "start": DATE,
    "end": NULLABLE_DATE, "metrology": {"type": "boolean"},
}, ["employer", "position", "start", "metrology"])

PROFILE_SECTIONS = {
    "photo": obj({"jpeg_base64": {"type": "string", "contentEncoding": "base64",
                                  "contentMediaType": "image/jpeg"}}, ["jpeg_base64"]),
    "basic": _draft({"gender": {"type": "string", "enum": ["M", "F"]}, "birth_date": DATE,
                     "ethnicity": _str(20), "political_status": _str(20)}),
    "education": obj({"education": {"type": "array", "items": _EDUCATION_ENTRY, "maxItems": 5},
                      "degrees": {"type": "array", "items": _DEGREE_ENTRY, "maxItems": 5}}),
    "work": obj({"entries": {"type": "array", "items": _WORK_ENTRY, "maxItems": 10}}),
    "contact": _draft({"email": {"type": "string", "format": "email", "maxLength": 100},
                       "address": _str(100),
                       "postcode": {"type": "string", "pattern": "^[0-9]{6}$"},
                       "phone": {"type": "string", "pattern": "^\\+?[0-9 ()-]{5,20}$"}}),
}
assert set(PROFILE_SECTIONS) == set(SECTIONS)
PROFILE_SECTION = {"anyOf": list(PROFILE_SECTIONS.values()),
                   "description": "the section named in the path: " + ", ".join(SECTIONS)}

# -- applications --------------------------------------------------------------------------

APPLICATION = obj({
    "session_id": _str(100),
    "level": {"type": "string", "enum": list(LEVELS)},
    "subjects": {"type": "array", "items": _str(20),
                 "description": "empty: every subject of the level (less an exempt one)"},
    "exemption": {"anyOf": [obj({"ground": {"type": "string", "enum": [
        "senior_title", "verifier_certificate"]}}, ["ground"]), {"type": "null"}]},
    "registration_point": _str(20),
    "commitment": {"anyOf": [obj({
        "pledge_version": _str(40), "signed_name": _str(50),
        "agreed": {"const": True}}, ["pledge_version", "signed_name", "agreed"]),
        {"type": "null"}], "description": "告知承诺: signed personally, or null for proof"},
}, ["session_id", "level", "registration_point"])

ENQUIRY = obj({"text": _str(2000, description="疑问: what the candidate questions")}, ["text"])

# -- registration-point staff and the authority --------------------------------------------

_DECISION = {"type": "string", "enum": ["pass", "reject"]}
MANUAL_DECISION = obj({"decision": _DECISION, "reason": _str(500),
                       "final": {"type": "boolean", "description": "a final rejection (报名终止)"}},
                      ["decision"])
ENQUIRY_ANSWER = obj({"answer": _str(2000), "reopen": {"type": "boolean"}}, ["answer"])
SESSION_YAML = obj({"yaml": {"type": "string", "minLength": 1, "maxLength": 200_000}}, ["yaml"])
AMENDMENT = obj({"window": {"type": "string", "enum": list(WINDOWS)}, "start": DATE_TIME,
                 "end": DATE_TIME, "reason": _str(500)}, ["window", "start", "end", "reason"])
SPOT_CHECK_DRAW = obj({"rate": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                       "seed": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}},
                      ["rate", "seed"])
SPOT_CHECK_DECISION = obj({"decision": _DECISION, "reason": _str(500)}, ["decision"])
CHECK_IN = obj({
    "ticket_number": _str(100), "qr": _str(300), "session_id": _str(100),
    "id_type": {"type": "string", "enum": list(ID_TYPES)}, "id_number": _str(32),
    "subject": _str(100)}, ["id_type", "id_number", "subject"],
    description="the ticket by number or by its scanned QR code")
VOID_REGISTRATION = obj({"reason": _str(500), "integrity": {"type": "boolean"}},
                        ["reason", "integrity"])
VOID_SCORES = obj({"account_id": _str(64), "session_id": _str(100), "reason": _str(500),
                   "integrity": {"type": "boolean"}}, ["account_id", "session_id", "reason"])
REVOKE = obj({"reason": _str(500)}, ["reason"])
PICKUP_NOTICE = obj({"place": _str(500), "start": DATE_TIME, "end": DATE_TIME,
                     "text": _str(4000)}, ["place", "start", "end", "text"])
COLLECTION = obj({"collected_by": _str(100), "id_type": {"type": "string", "enum": list(ID_TYPES)},
                  "id_number": _str(32), "by_proxy": {"type": "boolean"}},
                 ["id_type", "id_number"])
VERIFY = obj({"credential": _str(20_000, description="the VC-JWT of a certificate")},
             ["credential"])

# -- uploads (multipart/form-data or a raw body) -------------------------------------------

BINARY = {"type": "string", "contentMediaType": "application/octet-stream"}


def upload(field: str, many: bool = False) -> dict:
    item = {"type": "string", "format": "binary"}
    return obj({field: {"type": "array", "items": item} if many else item}, [field])


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
