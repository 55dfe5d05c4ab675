"""Registration's private events and the marshmallow schemas of its RPC inputs."""

import base64
import binascii

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates,
)

from shared.contracts import INTEGRATION, EventRegistry
from shared.contracts.registration import LEVELS, MAX_SUBJECTS, WINDOWS
from shared.fields import Text, account_ids

MAX_PROOF_BYTES = 5 * 1024 * 1024
MAX_PROOF_FILES = 5


# -- private events ----------------------------------------------------------------------

class CandidateRegistered(Schema):
    account_id = fields.String(required=True)
    name = fields.String(required=True)
    id_type = fields.String(required=True)
    id_number = fields.String(required=True)


class CandidateProfileUpdated(Schema):
    account_id = fields.String(required=True)
    section = fields.String(required=True)
    data = fields.Dict(required=True)
    completeness = fields.Integer(required=True)


class VerificationRecorded(Schema):
    application_id = fields.String(required=True)
    outcome = fields.String(required=True)
    reason = fields.String(required=True)
    rule = fields.String(allow_none=True, load_default=None)
    cause = fields.String(allow_none=True, load_default=None)
    at = fields.String(allow_none=True, load_default=None)


class EnquiryRecorded(Schema):
    """疑问核实: an enquiry raised about the application's case, or its answer (verification's
    EnquiryRaised / EnquiryAnswered), kept for the application's history."""

    application_id = fields.String(required=True)
    enquiry_id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["raised", "answered"]))
    about = fields.String(allow_none=True, load_default=None)
    text = fields.String(required=True)  # the question, or the answer
    reopened = fields.Boolean(allow_none=True, load_default=None)
    at = fields.String(allow_none=True, load_default=None)


class DeadlineReached(Schema):
    session_id = fields.String(required=True)
    window = fields.String(required=True, validate=validate.OneOf(WINDOWS))


class IntegrityRecordNoted(Schema):
    """诚信档案: verification's archive has this record (``services/registration/integrity.py``);
    live from ``recorded_on`` up to and including ``expires_on`` (None: no bound)."""

    record_id = fields.String(required=True)
    id_type = fields.String(required=True)
    id_number = fields.String(required=True)
    recorded_on = fields.String(required=True, allow_none=True)
    expires_on = fields.String(required=True, allow_none=True)


class IntegrityRecordDropped(Schema):
    """诚信档案: verification's archive no longer has this record."""

    record_id = fields.String(required=True)


PRIVATE = EventRegistry()
PRIVATE.register("CandidateRegistered", CandidateRegistered, public=False)
PRIVATE.register("CandidateProfileUpdated", CandidateProfileUpdated, public=False)
PRIVATE.register("VerificationRecorded", VerificationRecorded, public=False)
PRIVATE.register("DeadlineReached", DeadlineReached, public=False)
PRIVATE.register("EnquiryRecorded", EnquiryRecorded, public=False)
PRIVATE.register("IntegrityRecordNoted", IntegrityRecordNoted, public=False)
PRIVATE.register("IntegrityRecordDropped", IntegrityRecordDropped, public=False)


# staff and the authority looking at a candidate's documents (audited)
class DocumentViewed(Schema):
    """Someone looked at a candidate's document (proof file, profile, photo): who, which
    candidate's, which document, when. Kept for the audit trail; never published."""

    application_id = fields.String(required=True)
    session_id = fields.String(required=True)
    account_id = fields.String(required=True)  # the candidate's
    registration_point = fields.String(required=True)  # the application's
    viewer = fields.String(required=True)  # the staff member's or the authority's account id
    viewer_role = fields.String(required=True, validate=validate.OneOf(["staff", "authority"]))
    viewer_point = fields.String(allow_none=True, load_default=None)
    document = fields.String(required=True, validate=validate.OneOf(["proof", "profile", "photo"]))
    file_id = fields.String(allow_none=True, load_default=None)
    file_name = fields.String(allow_none=True, load_default=None)
    viewed_at = fields.String(required=True)


PRIVATE.register("DocumentViewed", DocumentViewed, public=False)

REGISTRY = EventRegistry().include(INTEGRATION).include(PRIVATE)


# -- RPC inputs --------------------------------------------------------------------------

class ExemptionInput(Schema):
    ground = fields.String(required=True, validate=validate.OneOf(["senior_title", "verifier_certificate"]))


class CommitmentInput(Schema):
    """告知承诺: the candidate signs personally, naming the pledge version they read."""

    pledge_version = Text(max_length=40, required=True)
    signed_name = Text(max_length=50, required=True)
    agreed = fields.Boolean(required=True, validate=validate.Equal(True, error="the pledge must be agreed to"))


class SubmitApplicationSchema(Schema):
    session_id = Text(max_length=100, required=True)
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    subjects = fields.List(Text(max_length=20), load_default=list,
                           validate=validate.Length(max=MAX_SUBJECTS))
    exemption = fields.Nested(ExemptionInput, allow_none=True, load_default=None)
    registration_point = Text(max_length=20, required=True)
    commitment = fields.Nested(CommitmentInput, allow_none=True, load_default=None)


class ProofFileInput(Schema):
    name = Text(max_length=100, required=True)
    content_base64 = fields.String(required=True)

    @pre_load
    def _strip(self, data, **kw):
        if isinstance(data, dict) and isinstance(data.get("content_base64"), str):
            data = {**data, "content_base64": "".join(data["content_base64"].split())}
        return data

    @validates("content_base64")
    def _size(self, value, **kw):
        if len(value) > (MAX_PROOF_BYTES * 4) // 3 + 8:
            raise ValidationError(f"a proof file may be at most {MAX_PROOF_BYTES // (1024 * 1024)} MiB")

    @post_load
    def _decode(self, data, **kw):
        try:
            raw = base64.b64decode(data["content_base64"], validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError({"content_base64": ["not valid base64"]}) from None
        if len(raw) > MAX_PROOF_BYTES:
            raise ValidationError({"content_base64": ["a proof file may be at most 5 MiB"]})
        if raw.startswith(b"%PDF-"):
            content_type = "application/pdf"
        elif raw.startswith(b"\xff\xd8\xff"):
            content_type = "image/jpeg"
        else:
            raise ValidationError({"content_base64": ["proof must be a PDF or a JPEG file"]})
        return {"name": data["name"], "content_type": content_type, "data": raw}


class SubmitProofSchema(Schema):
    session_id = Text(max_length=100, required=True)
    files = fields.List(fields.Nested(ProofFileInput), required=True,
                        validate=validate.Length(min=1, max=MAX_PROOF_FILES))


class SessionRefSchema(Schema):
    session_id = Text(max_length=100, required=True)


class AmendTimetableSchema(Schema):
    session_id = Text(max_length=100, required=True)
    window = fields.String(required=True, validate=validate.OneOf(WINDOWS))
    start = fields.AwareDateTime(required=True)
    end = fields.AwareDateTime(required=True)
    reason = Text(max_length=500, required=True)


class LoadSessionSchema(Schema):
    yaml = fields.String(required=True, validate=validate.Length(min=1, max=200_000))


class AuthoritySchema(Schema):
    """Who acts for the exam authority (考试机构)."""

    staff_id = Text(max_length=64, required=True)


class VoidRegistrationSchema(Schema):
    """报名无效: which registration, why, and whether to write an integrity record (诚信档案)."""

    application_id = Text(max_length=200, required=True)
    reason = Text(max_length=500, required=True)
    integrity = fields.Boolean(required=True)


class AuditQuerySchema(Schema):
    """Which decisions to list (newest first): of a session, of a staff member."""

    session_id = Text(max_length=100, load_default=None)
    staff_id = Text(max_length=100, load_default=None)
    application_id = Text(max_length=200, load_default=None)  # one candidate's application
    account_id = fields.String(load_default=None, validate=validate.Regexp(
        r"[0-9A-Za-z]{1,64}\Z", error="an account id"))  # one candidate, every session
    since = fields.AwareDateTime(load_default=None)  # from (inclusive)
    until = fields.AwareDateTime(load_default=None)  # before (exclusive)
    limit = fields.Integer(load_default=100, strict=True, validate=validate.Range(min=1, max=1000))


# -- staff and the authority looking at a candidate's documents (audited) ----------------

class ViewerSchema(Schema):
    """Who looks: registration-point staff (with their point) or the exam authority."""

    staff_id = Text(max_length=64, required=True)
    role = fields.String(required=True, validate=validate.OneOf(["staff", "authority"]))
    registration_point = Text(max_length=20, load_default=None)

    @validates("registration_point")
    def _point(self, value, **kw):
        if value is not None and not value.replace("-", "").replace("_", "").isalnum():
            raise ValidationError("a registration point code is letters, digits, - or _")

    @post_load
    def _staff_has_point(self, data, **kw):
        if data["role"] == "staff" and not data.get("registration_point"):
            raise ValidationError({"registration_point": ["staff act for their point"]})
        if data["role"] == "authority":
            data["registration_point"] = None
        return data


class ProofRefSchema(Schema):
    application_id = Text(max_length=200, required=True)
    file_id = fields.String(required=True, validate=validate.Regexp(
        r"[0-9a-f]{64}\Z", error="a proof file id is the 64 hex digits the case lists"))


class CountsRefSchema(SessionRefSchema):
    """A session's counts, of every candidate or (``account_ids``) only of these."""

    account_ids = account_ids()
