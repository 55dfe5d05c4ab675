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
from shared.fields import Instant, LocalTime, Text, account_ids, nullable

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


# -- replies: what the RPC methods answer, as the gateway dumps it (its OpenAPI document is
# made from these; services/gateway/from_marshmallow.py) ---------------------------------

S, Int, B, L, D = fields.String, fields.Integer, fields.Boolean, fields.List, fields.Dict


class WindowReply(Schema):
    label, start, end, description = S(required=True), Instant(required=True), \
        Instant(required=True), S(required=True)


class LevelReply(Schema):
    name = S(required=True)
    subjects = L(S(), required=True)
    exemptions = D(keys=S(), values=S(), required=True,
                   metadata={"description": "exemption ground -> what it takes"})
    validity_years, validity_years_exempt = nullable(Int), nullable(Int)


class SubjectReply(Schema):
    name, level, full_marks = S(required=True), S(required=True), Int(required=True)


class PointReply(Schema):
    name, address, phone = S(required=True), nullable(S), nullable(S)


class SessionReply(Schema):
    """An exam session: its timetable (windows), levels, subjects, registration points, the
    pledge text and the current phase."""

    session_id, name, exam_year = S(required=True), S(required=True), Int(required=True)
    pledge_version, pledge_text = S(required=True), S(required=True)
    windows = D(keys=S(), values=fields.Nested(WindowReply), required=True)
    levels = D(keys=S(), values=fields.Nested(LevelReply), required=True)
    subjects = D(keys=S(), values=fields.Nested(SubjectReply), required=True)
    registration_points = D(keys=S(), values=fields.Nested(PointReply), required=True)
    phase = nullable(S, metadata={"description": "the window open now (null: none)"})


class SessionListReply(Schema):
    """An exam session scheduled."""

    session_id, name, exam_year = S(required=True), S(required=True), Int(required=True)


class CommitmentReply(Schema):
    pledge_version, signed_name, signed_at = S(required=True), S(required=True), \
        Instant(required=True)


class VoidedReply(Schema):
    reason, integrity, voided_at = S(required=True), B(required=True), Instant(required=True)


class ProofFileReply(Schema):
    file_id, name, content_type, size = S(required=True), S(required=True), \
        S(required=True), Int(required=True)
    uploaded_at, round = nullable(Instant), Int()


class HistoryItemReply(Schema):
    """One step of an application's history (the verification's outcomes, enquiries,
    proof, confirmation, voiding …)."""

    type, at, at_local = S(required=True), nullable(Instant), nullable(LocalTime)
    reason, rule, cause = S(allow_none=True), S(allow_none=True), S()
    enquiry_id, about, text = S(), S(allow_none=True), S()
    answer, reopened = S(), B()
    files = fields.Nested(Schema.from_dict({"name": S(required=True),
                                            "size": Int(required=True)},
                                           name="HistoryFileReply"), many=True)


class ApplicationReply(Schema):
    """An application (报名) with its status, reasons and whole history."""

    application_id, session_id, account_id = S(required=True), S(required=True), S(required=True)
    level = S(required=True)
    subjects = L(S(), required=True)
    exemption = nullable(D, metadata={"description": "the exemption claimed"})
    registration_point = S(required=True)
    commitment = fields.Nested(CommitmentReply, required=True, allow_none=True)
    status, status_label, reason = S(required=True), S(required=True), nullable(S)
    open_enquiry = nullable(S)
    voided = fields.Nested(VoidedReply, required=True, allow_none=True)
    history = fields.Nested(HistoryItemReply, many=True, required=True)


class CandidateProfileReply(Schema):
    name, id_type, id_number = S(required=True), S(required=True), S(required=True)
    completeness = Int(required=True)
    sections = D(keys=S(), values=D(), required=True,
                 metadata={"description": "the profile's sections as the candidate saved them"})


class CandidateFileReply(Schema):
    """A case's candidate: the application, the profile now (null before registration has
    heard of it) and as it was when they applied, and the proof files."""

    application = fields.Nested(ApplicationReply, required=True)
    profile = fields.Nested(CandidateProfileReply, required=True, allow_none=True)
    at_application = nullable(D, metadata={"description": "the profile as applied with"})
    proof_files = fields.Nested(ProofFileReply, many=True, required=True)


class AuditRowReply(Schema):
    """A decision or look in the audit trail: who, when, what, why."""

    at, at_local = nullable(Instant), nullable(LocalTime)
    session_id, staff_id, action = nullable(S), nullable(S), S(required=True)
    application_id, what, why = nullable(S), nullable(S), nullable(S)
