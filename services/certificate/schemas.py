"""Marshmallow schemas of the certificate service: private events and RPC inputs.

Private events (``public=False``) stay inside the service: the session as this service
knows it, the certificate-number sequence, the certificate's full record (the holder's ID
number, the verification token, the signed credential) and the document a paper
certificate was collected with. The published events are ``shared.contracts.certificate``.
"""

import unicodedata

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from shared.contracts import INTEGRATION, EventRegistry
from shared.contracts.account import ID_TYPES
from shared.contracts.registration import LEVELS
from shared.fields import Instant, Text, account_ids, nullable

# --- private events -------------------------------------------------------------------


def _id():
    return fields.String(required=True, validate=validate.Length(min=1, max=100))


class SessionRecorded(Schema):
    """The exam session as this service knows it (scheduled or amended, whole)."""

    session_id = _id()
    document = fields.Dict(required=True)


class CertificateNumberAllocated(Schema):
    """One number of the sequence, used (by a qualification, or skipped when a format
    change would have given a number that exists already: ``qualification_id`` None)."""

    seq = fields.Integer(required=True, validate=validate.Range(min=1))
    certificate_number = _id()
    qualification_id = fields.String(required=True, allow_none=True)


class Holder(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    id_type = fields.String(required=True, validate=validate.Length(min=1, max=32))
    id_number = fields.String(required=True, validate=validate.Length(min=1, max=64))


class CertificateRecorded(Schema):
    """Everything the certificate is: the facts, the holder, the token, the credential."""

    certificate_number = _id()
    qualification_id = _id()
    account_id = _id()
    session_id = _id()
    exam_year = fields.Integer(required=True)
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    candidate = fields.Nested(Holder, required=True)
    status_index = fields.Integer(required=True, validate=validate.Range(min=0))
    issued_at = fields.AwareDateTime(required=True)
    token = fields.String(required=True, validate=validate.Length(min=16, max=64))
    credential = fields.String(required=True)  # VC-JWT
    kid = fields.String(required=True)


class CollectorIdentified(Schema):
    """The document shown at the counter when a paper certificate was handed out."""

    certificate_number = _id()
    by_proxy = fields.Boolean(required=True)
    collected_by = fields.String(required=True)
    id_type = fields.String(required=True)
    id_number = fields.String(required=True)


PRIVATE = EventRegistry()
PRIVATE.register("SessionRecorded", SessionRecorded, public=False)
PRIVATE.register("CertificateNumberAllocated", CertificateNumberAllocated, public=False)
PRIVATE.register("CertificateRecorded", CertificateRecorded, public=False)
PRIVATE.register("CollectorIdentified", CollectorIdentified, public=False)

#: every event type the certificate service stores or reads
REGISTRY = EventRegistry().include(INTEGRATION).include(PRIVATE)


# --- RPC inputs -----------------------------------------------------------------------


def _text(n, **kw):
    return Text(max_length=n, required=True, **kw)


class AuthoritySchema(Schema):
    """Who acts for the exam authority (考试机构)."""

    staff_id = _text(64)


class AccountSchema(Schema):
    account_id = _text(100)


class SessionRefSchema(Schema):
    session_id = _text(100)


class VerifySchema(Schema):
    """证书查询验证: exactly one of a certificate number, a verification-page token, or a
    credential (the VC-JWT itself)."""

    certificate_number = Text(max_length=100)
    token = Text(max_length=64)
    credential = Text(max_length=20_000)

    @validates_schema
    def _exactly_one(self, data, **kwargs):
        given = [k for k in ("certificate_number", "token", "credential") if data.get(k)]
        if len(given) != 1:
            raise ValidationError("give exactly one of certificate_number, token, credential",
                                  "_schema")


class DownloadSchema(Schema):
    account_id = _text(100)
    certificate_number = _text(100)
    format = fields.String(required=True, validate=validate.OneOf(
        ["pdf", "vc"], error="format is pdf (the certificate) or vc (the signed credential)"))


class RevokeSchema(Schema):
    certificate_number = _text(100)
    reason = _text(500)


def _multiline(s: str) -> bool:
    """Free text over several lines: line breaks and tabs, but no other control characters
    or invisible formatting characters."""
    if not s.strip():
        raise ValidationError("must not be blank")
    if any(unicodedata.category(c) in ("Cc", "Cf") and c not in "\n\r\t" for c in s):
        raise ValidationError("must not contain control or invisible formatting characters")
    return True


class PickupNoticeSchema(Schema):
    """领证通知: where and when a session's paper certificates are collected."""

    session_id = _text(100)
    place = _text(500)
    start = fields.AwareDateTime(required=True)
    end = fields.AwareDateTime(required=True)
    text = fields.String(required=True, validate=[validate.Length(min=1, max=4000),
                                                  lambda s: _multiline(s)])

    @validates_schema(skip_on_field_errors=True)
    def _period(self, data, **kwargs):
        if data["start"] >= data["end"]:
            raise ValidationError("the pickup period must end after it starts", "end")


class CollectionSchema(Schema):
    """领取纸质证书: who collects, with which document; a proxy (代领) names themself."""

    certificate_number = _text(100)
    collected_by = Text(max_length=100)
    id_type = fields.String(required=True, validate=validate.OneOf(ID_TYPES))
    id_number = _text(32)
    by_proxy = fields.Boolean(load_default=False)

    @validates_schema(skip_on_field_errors=True)
    def _proxy_named(self, data, **kwargs):
        if data["by_proxy"] and not data.get("collected_by"):
            raise ValidationError("a proxy collection records the proxy's name", "collected_by")


class StatusListSchema(Schema):
    list_no = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0, max=10_000))


class CountsRefSchema(SessionRefSchema):
    """A session's counts, of every candidate or (``account_ids``) only of these."""

    account_ids = account_ids()


# -- replies: what the RPC methods answer, as the gateway dumps it (its OpenAPI document is
# made from these; services/gateway/from_marshmallow.py) ---------------------------------

S, Int, B = fields.String, fields.Integer, fields.Boolean


class IssuerReply(Schema):
    """The certificate issuer: its id, name and public keys (JWKS)."""

    issuer, name = S(required=True), S(required=True)
    jwks = fields.Dict(required=True, metadata={"description": "JSON Web Key Set"})


class StatusListReply(Schema):
    """A revocation status list, signed (a BitstringStatusListCredential as a VC-JWT)."""

    id, list = S(required=True), Int(required=True)
    content_type, credential = S(required=True), S(required=True)


class VerdictReply(Schema):
    """证书查询验证: the verdict (``result``) and, for a certificate issued here, what it
    says (the holder's name masked)."""

    result = S(required=True)
    detail = S(metadata={"description": "why, in words (not_ours, invalid …)"})
    why = S(metadata={"description": "invalid: the finer reason, e.g. tampered"})
    certificate_number, name, level, level_name = S(), S(), S(), S()
    qualification, exam_year, issued_at, issuer = S(), Int(), Instant(), S()
    revoked_at, reason = Instant(allow_none=True), S(allow_none=True)


class MyCertificateReply(Schema):
    """A certificate of the candidate's, with when it can be downloaded."""

    certificate_number, qualification_id = S(required=True), S(required=True)
    session_id, exam_year = S(required=True), Int(required=True)
    level, level_name, name = S(required=True), S(required=True), S(required=True)
    issued_at, status = Instant(required=True), S(required=True)
    revoked_at, revoke_reason = nullable(Instant), nullable(S)
    paper_collected = nullable(B)
    downloads_open_at = nullable(Instant)
    downloadable = B(required=True)
    verify_url = S(required=True)


class PickupNoticeReply(Schema):
    """领证通知: where and when paper certificates are collected."""

    notice_id, session_id, place = S(required=True), S(required=True), S(required=True)
    start, end = Instant(required=True), Instant(required=True)
    text, noticed_at = S(required=True), nullable(Instant)


class CollectionReply(Schema):
    """领取纸质证书: who collected it (a proxy or the holder), recorded by whom, when."""

    certificate_number, collected_by = S(required=True), S(required=True)
    by_proxy, staff, collected_at = B(required=True), S(required=True), Instant(required=True)
