"""Marshmallow schemas of the account service: RPC inputs and private events.

Inputs: every string is NFC-normalized and stripped of surrounding whitespace (passwords
are not stripped: a space can be part of a secret), refuses control and format characters
and has a maximum length.

Profile sections may be saved as drafts: a section's own fields are optional and blank
values count as not filled in. Entries of the list sections (学历, 学位, 工作经历) need their
required fields, because a saved entry can be edited but never deleted.

Private events (``PRIVATE``, ``public=False``) stay inside the service: credentials,
login failures and uniqueness claims.
"""

import base64
import binascii
import re
import unicodedata
from datetime import date

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates,
    validates_schema,
)

from services.account import identity
from shared.contracts import INTEGRATION, EventRegistry
from shared.contracts.account import ID_TYPES
from shared.fields import Instant, Text, nullable

EDUCATION_LEVELS = ("中专", "大专", "本科", "双学士", "研究生班", "硕士", "博士")
DEGREES = ("学士", "硕士", "博士")
MAJOR_CATEGORIES = ("science_engineering", "other")  # 理工类 / 其他 (other majors need +1 year)
MAX_EDUCATION_ENTRIES = 5
MAX_DEGREE_ENTRIES = 5
MAX_WORK_ENTRIES = 10
EARLIEST_DATE = date(1900, 1, 1)
MAX_PHOTO_BASE64 = 300_000  # 200 KiB of JPEG is ~273,000 base64 characters

_NAME_DOTS = str.maketrans({"•": "·", "・": "·", "．": "·"})  # look-alikes of 间隔号
_USERNAME = re.compile(r"[A-Za-z0-9_]{4,32}", re.ASCII)


# --- fields ---------------------------------------------------------------------------


class Name(Text):
    """姓名: letters of any script (incl. CJK), the middle dot ·, spaces, hyphen, apostrophe."""

    def __init__(self, **kwargs):
        super().__init__(max_length=50, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        s = " ".join(super()._deserialize(value, attr, data, **kwargs).split())
        s = s.translate(_NAME_DOTS)
        ok = all(unicodedata.category(c)[0] in "LM" or c in "· -'" for c in s)
        if not ok or not unicodedata.category(s[0]).startswith("L"):
            raise ValidationError("a name has only letters, spaces and the middle dot ·")
        return s


class Mobile(Text):
    """Mainland mobile number (手机号), normalized to 11 digits."""

    def __init__(self, **kwargs):
        super().__init__(max_length=20, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return identity.validate_mobile(super()._deserialize(value, attr, data, **kwargs))
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class Username(Text):
    json_schema = {"pattern": "^[A-Za-z0-9_]{4,32}$"}  # _USERNAME, for the OpenAPI document

    def __init__(self, **kwargs):
        super().__init__(max_length=32, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        s = super()._deserialize(value, attr, data, **kwargs)
        if not _USERNAME.fullmatch(s):
            raise ValidationError("a username is 4–32 letters, digits or underscores")
        return s


class Password(Text):
    """A new password: 8–64 characters with at least one letter and one digit."""

    def __init__(self, **kwargs):
        super().__init__(max_length=64, min_length=8, strip=False, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        s = super()._deserialize(value, attr, data, **kwargs)
        if not (any(c.isalpha() for c in s) and any(c.isdigit() for c in s)):
            raise ValidationError("a password needs at least one letter and one digit")
        return s


def _date(**kwargs):
    return fields.Date(
        validate=validate.Range(min=EARLIEST_DATE, error="must be 1900-01-01 or later"), **kwargs
    )


def _choice(choices, **kwargs):
    return fields.String(validate=validate.OneOf(choices), **kwargs)


def _entries(schema, cap, what):
    return fields.List(
        fields.Nested(schema),
        load_default=list,
        validate=validate.Length(max=cap, error=f"at most {cap} {what} entries"),
    )


# --- account and credentials ----------------------------------------------------------


class RegisterSchema(Schema):
    """注册: identity, contact and credentials. ``today`` bounds the birth date in the ID."""

    name = Name(required=True)
    id_type = _choice(ID_TYPES, required=True)
    id_number = Text(max_length=32, required=True)
    mobile = Mobile(required=True)
    username = Username(required=True)
    password = Password(required=True)

    def __init__(self, *, today: date | None = None, **kwargs):
        super().__init__(**kwargs)
        self.today = today

    @validates_schema(skip_on_field_errors=False)
    def _check_id_and_password(self, data, **kwargs):
        errors = {}
        if data.get("id_type") in ID_TYPES and "id_number" in data:
            try:
                identity.validate_id_number(data["id_type"], data["id_number"], self.today)
            except ValueError as exc:
                errors["id_number"] = [str(exc)]
        username, password = data.get("username"), data.get("password")
        if username and password and password.lower() == username.lower():
            errors["password"] = ["the password must not be the same as the username"]
        if errors:
            raise ValidationError(errors)

    @post_load
    def _normalize(self, data, **kwargs):
        data["id_number"] = identity.validate_id_number(
            data["id_type"], data["id_number"], self.today
        )
        return data


class LoginSchema(Schema):
    # no strength rules here: an old password must still be usable to log in
    username = Text(max_length=32, required=True)
    password = Text(max_length=64, strip=False, required=True)


class ResetStartSchema(Schema):
    """找回密码: the username and the account's mobile, both (so nobody who knows only a
    username can send codes to its owner's phone)."""

    username = Text(max_length=32, required=True)
    mobile = Text(max_length=20, required=True)


class ResetFinishSchema(Schema):
    username = Text(max_length=32, required=True)
    code = Text(max_length=6, min_length=6, required=True,
                validate=validate.Regexp(r"[0-9]{6}\Z", error="the code is six digits"))
    new_password = Password(required=True)

    @validates_schema
    def _not_the_username(self, data, **kwargs):
        username, password = data.get("username"), data.get("new_password")
        if username and password and password.lower() == username.lower():
            raise ValidationError("the password must not be the same as the username",
                                  "new_password")


STAFF_ROLES = ("staff", "authority", "operator")  # 报名点工作人员 / 考试机构 / 运维
_POINT = re.compile(r"[0-9A-Za-z_-]{1,20}", re.ASCII)


class CreateStaffSchema(Schema):
    """A staff account, made by an operator (``kaowu staff add``): registration-point staff
    (``staff``, bound to one registration point 报名点), the exam authority (``authority``,
    考试机构) or an operator. Same username and password rules as candidates."""

    username = Username(required=True)
    password = Password(required=True)
    name = Name(required=True)
    role = _choice(STAFF_ROLES, required=True)
    registration_point = Text(max_length=20, load_default=None, allow_none=True)

    @validates_schema(skip_on_field_errors=False)
    def _point_and_password(self, data, **kwargs):
        errors = {}
        point = data.get("registration_point")
        if data.get("role") == "staff" and not point:
            errors["registration_point"] = ["registration-point staff need their point's code"]
        elif data.get("role") in ("authority", "operator") and point:
            errors["registration_point"] = [f"a {data['role']} account belongs to no registration point"]
        elif point and not _POINT.fullmatch(point):
            errors["registration_point"] = ["a registration point code is letters, digits, - or _"]
        username, password = data.get("username"), data.get("password")
        if username and password and password.lower() == username.lower():
            errors["password"] = ["the password must not be the same as the username"]
        if errors:
            raise ValidationError(errors)


class ChangePasswordSchema(Schema):
    old_password = Text(max_length=64, strip=False, required=True)
    new_password = Password(required=True)

    @validates_schema
    def _differs(self, data, **kwargs):
        if data["old_password"] == data["new_password"]:
            raise ValidationError("the new password must differ from the old one", "new_password")


# --- profile sections -----------------------------------------------------------------


class DraftSchema(Schema):
    """A profile form: blank values (None, "", whitespace) mean 'not filled in yet'."""

    blank_means_unset = True  # the OpenAPI document admits a blank for each optional field

    @pre_load
    def _drop_blanks(self, data, **kwargs):
        if not isinstance(data, dict):
            return data  # marshmallow answers "Invalid input type."
        return {
            k: v
            for k, v in data.items()
            if v is not None and not (isinstance(v, str) and not v.strip())
        }


class PhotoSchema(Schema):
    """照片 upload: ``{"jpeg_base64": ...}``; a data: URL prefix and line breaks are dropped.

    Only the encoding is checked here; ``photo.check_photo`` judges the decoded image.
    """

    jpeg_base64 = fields.String(required=True)

    @pre_load
    def _bare_base64(self, data, **kwargs):
        text = data.get("jpeg_base64") if isinstance(data, dict) else None
        if isinstance(text, str):
            if text.startswith("data:"):
                text = text.partition(",")[2]
            data = {**data, "jpeg_base64": "".join(text.split())}
        return data

    @validates("jpeg_base64")
    def _decodes(self, text, **kwargs):
        if len(text) > MAX_PHOTO_BASE64:
            raise ValidationError("the photo is too large (at most 200 KiB)")
        try:
            base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError("the photo is not valid base64") from None


class BasicSchema(DraftSchema):
    """基本信息. 'Not in the future' and the match with a resident ID are domain rules."""

    gender = _choice(("M", "F"))
    birth_date = _date()
    ethnicity = Text(max_length=20)  # 民族
    political_status = Text(max_length=20)  # 政治面貌


class EducationEntrySchema(DraftSchema):
    """学历: one diploma."""

    entry_id = Text(max_length=16)
    level = _choice(EDUCATION_LEVELS, required=True)
    school = Text(max_length=60, required=True)
    major = Text(max_length=60, required=True)
    major_category = _choice(MAJOR_CATEGORIES, required=True)
    graduated_on = _date(required=True)
    certificate_no = Text(max_length=40)  # 学历证书编号


class DegreeEntrySchema(DraftSchema):
    """学位: one degree."""

    entry_id = Text(max_length=16)
    degree = _choice(DEGREES, required=True)
    school = Text(max_length=60, required=True)
    major = Text(max_length=60, required=True)
    awarded_on = _date(required=True)
    certificate_no = Text(max_length=40)  # 学位证书编号


class EducationSchema(DraftSchema):
    education = _entries(EducationEntrySchema, MAX_EDUCATION_ENTRIES, "education")
    degrees = _entries(DegreeEntrySchema, MAX_DEGREE_ENTRIES, "degree")


class WorkEntrySchema(DraftSchema):
    """工作经历: one job; ``end`` empty means the current job."""

    entry_id = Text(max_length=16)
    employer = Text(max_length=100, required=True)
    position = Text(max_length=50, required=True)
    start = _date(required=True)
    end = _date(load_default=None, allow_none=True)
    metrology = fields.Boolean(required=True)  # 是否从事计量工作: counts towards eligibility

    @validates_schema
    def _end_after_start(self, data, **kwargs):
        if data["end"] is not None and data["end"] < data["start"]:
            raise ValidationError("the end date must not be before the start date", "end")


class WorkSchema(DraftSchema):
    entries = _entries(WorkEntrySchema, MAX_WORK_ENTRIES, "work")


class ContactSchema(DraftSchema):
    """联系方式."""

    email = Text(max_length=100, validate=validate.Email(error="not a valid email address"))
    address = Text(max_length=100)
    postcode = Text(
        max_length=6,
        validate=validate.Regexp(r"\d{6}\Z", flags=re.ASCII, error="a postcode is 6 digits"),
    )
    phone = Text(
        max_length=20,
        validate=validate.Regexp(
            r"\+?[\d ()-]{5,20}\Z", flags=re.ASCII, error="a phone number has digits, spaces, ( ) -"
        ),
    )


SECTION_SCHEMAS = {
    "photo": PhotoSchema,
    "basic": BasicSchema,
    "education": EducationSchema,
    "work": WorkSchema,
    "contact": ContactSchema,
}


# --- private events -------------------------------------------------------------------


def _account_id():
    return fields.String(required=True, validate=validate.Length(min=1, max=64))


class CredentialsSet(Schema):
    account_id = _account_id()
    password_hash = fields.String(required=True, validate=validate.Length(min=1))


class PasswordChanged(CredentialsSet):
    # since the gateway ends earlier sign-ins; older events have their commit time only
    changed_at = fields.AwareDateTime(load_default=None)


def _reset_id():
    return fields.String(required=True, validate=validate.Length(equal=32))


class PasswordResetRequested(Schema):
    """找回密码: a code was sent; only its keyed hash is kept (``shared.reset_codes``)."""

    account_id = _account_id()
    reset_id = _reset_id()
    code_hash = fields.String(required=True, validate=validate.Length(equal=64))
    requested_at = fields.AwareDateTime(required=True)
    expires_at = fields.AwareDateTime(required=True)


class PasswordResetCodeRejected(Schema):
    account_id = _account_id()
    reset_id = _reset_id()
    attempts = fields.Integer(required=True, validate=validate.Range(min=1))


class PasswordReset(CredentialsSet):
    reset_id = _reset_id()
    reset_at = fields.AwareDateTime(required=True)


class LoginFailed(Schema):
    account_id = _account_id()
    failures = fields.Integer(required=True, validate=validate.Range(min=1))
    locked_until = fields.AwareDateTime(required=True, allow_none=True)


class AccountOnly(Schema):
    account_id = _account_id()


class StaffAccountCreated(Schema):
    """A staff account (工作人员账号): private, staff are no business of other services."""

    account_id = _account_id()
    username = fields.String(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(STAFF_ROLES))
    registration_point = fields.String(required=True, allow_none=True)
    created_at = fields.AwareDateTime(required=True)


PRIVATE = EventRegistry()
PRIVATE.register("CredentialsSet", CredentialsSet, public=False)
PRIVATE.register("PasswordChanged", PasswordChanged, public=False)
PRIVATE.register("LoginFailed", LoginFailed, public=False)
PRIVATE.register("PasswordResetRequested", PasswordResetRequested, public=False)
PRIVATE.register("PasswordResetCodeRejected", PasswordResetCodeRejected, public=False)
PRIVATE.register("PasswordReset", PasswordReset, public=False)
for _name in ("LoginFailuresReset", "IdNumberClaimed", "MobileClaimed", "UsernameClaimed"):
    PRIVATE.register(_name, AccountOnly, public=False)

#: staff accounts' own events: private as well (credentials and claims are in ``PRIVATE``)
STAFF = EventRegistry()
STAFF.register("StaffAccountCreated", StaffAccountCreated, public=False)

#: every event type the account service stores or reads
REGISTRY = EventRegistry().include(INTEGRATION).include(PRIVATE).include(STAFF)


# -- replies: what the RPC methods answer, as the gateway dumps it (its OpenAPI document is
# made from these; services/gateway/from_marshmallow.py) ---------------------------------

S, Int, B, L, D = fields.String, fields.Integer, fields.Boolean, fields.List, fields.Dict


class AccountCreatedReply(Schema):
    """注册账号: the new account's id."""

    account_id = S(required=True)


class PasswordChangedReply(Schema):
    account_id, changed = S(required=True), B(required=True, validate=validate.Equal(True))


class PasswordResetStartedReply(Schema):
    """The same answer whether or not the username and mobile name an account."""

    accepted = B(required=True, validate=validate.Equal(True))
    message = S(required=True)


class PasswordResetReply(Schema):
    account_id, reset = S(required=True), B(required=True, validate=validate.Equal(True))


_SECTIONS = {"description": "the profile's sections (basic, education, work, contact, "
                            "photo) as the candidate saved them (a draft may be partial)"}


class ProfileReply(Schema):
    """信息维护: the whole profile with its completeness (percent) and what is missing."""

    account_id, username, name = S(required=True), S(required=True), S(required=True)
    id_type, id_number, mobile = S(required=True), S(required=True), S(required=True)
    completeness, complete = Int(required=True), B(required=True)
    missing = L(S(), required=True)
    sections = D(keys=S(), values=D(), required=True, metadata=_SECTIONS)
    registered_at = Instant(required=True)


class ProfileSectionSavedReply(Schema):
    """A section just saved, and the profile's completeness now."""

    account_id, section = S(required=True), S(required=True)
    data = nullable(D, metadata={"description": "the section as saved"})
    completeness, complete = Int(required=True), B(required=True)
    missing = L(S(), required=True)
