"""Integration events of the account service (账号服务): the published language.

AccountRegistered v2 added ``id_type``; every v1 account was registered with a mainland
resident ID (居民身份证), so the v1 -> v2 upcaster sets ``id_type = "resident_id"``.

Payloads are JSON-plain: dates and datetimes travel as ISO 8601 strings. Profile section
data never carries the photo's bytes, only its digest and dimensions.
"""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from shared.contracts import INTEGRATION

SECTIONS = ("photo", "basic", "education", "work", "contact")
"""Profile sections (照片, 基本信息, 学历学位, 工作经历, 联系方式), each worth 20% completeness."""

ID_TYPES = ("resident_id", "passport", "hk_macao_permit", "taiwan_permit")
PHOTO_KEYS = frozenset({"sha256", "width", "height", "size"})


def _account_id():
    return fields.String(required=True, validate=validate.Length(min=1, max=64))


def _missing():
    return fields.List(fields.String(validate=validate.OneOf(SECTIONS)), required=True)


class AccountRegisteredV2(Schema):
    account_id = _account_id()
    username = fields.String(required=True, validate=validate.Length(min=1, max=32))
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    id_type = fields.String(required=True, validate=validate.OneOf(ID_TYPES))
    id_number = fields.String(required=True, validate=validate.Length(min=1, max=32))
    mobile = fields.String(required=True, validate=validate.Length(min=1, max=20))
    registered_at = fields.AwareDateTime(required=True)


class ProfileUpdated(Schema):
    account_id = _account_id()
    section = fields.String(required=True, validate=validate.OneOf(SECTIONS))
    # the section's whole content after the update, not a diff
    data = fields.Dict(keys=fields.String(), required=True)
    completeness = fields.Integer(required=True, validate=validate.Range(0, 100))
    missing = _missing()

    @validates_schema
    def _no_photo_bytes(self, payload, **kwargs):
        if payload["section"] == "photo" and not set(payload["data"]) <= PHOTO_KEYS:
            raise ValidationError("photo data carries only sha256, width, height, size", "data")


class ProfileCompleted(Schema):
    account_id = _account_id()
    completeness = fields.Integer(required=True, validate=validate.Equal(100))


class ProfileBecameIncomplete(Schema):
    account_id = _account_id()
    completeness = fields.Integer(required=True, validate=validate.Range(0, 99))
    missing = _missing()


class PasswordResetCodeIssued(Schema):
    """找回密码: send the account's mobile the code of this reset. Carries neither the code
    nor its hash: the notification service derives the code from ``reset_id`` under
    ``PASSWORD_RESET_KEY`` when the SMS goes out (``shared.reset_codes``)."""

    account_id = _account_id()
    reset_id = fields.String(required=True, validate=validate.Length(equal=32))
    expires_at = fields.AwareDateTime(required=True)


INTEGRATION.register(
    "AccountRegistered",
    AccountRegisteredV2,
    version=2,
    upcasters={1: lambda p: {**p, "id_type": "resident_id"}},
)
INTEGRATION.register("ProfileUpdated", ProfileUpdated)
INTEGRATION.register("ProfileCompleted", ProfileCompleted)
INTEGRATION.register("ProfileBecameIncomplete", ProfileBecameIncomplete)
INTEGRATION.register("PasswordResetCodeIssued", PasswordResetCodeIssued)
