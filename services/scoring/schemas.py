"""Marshmallow schemas of the scoring service: private events and RPC inputs.

Private events (``PRIVATE``, ``public=False``) never leave the service with their payload:
the score rows (``ScoreRowsRecorded``) and the per-candidate results (``SittingResulted``)
above all, so no score is seen outside before publication; the tickets and exam-day
records copied from admission; the session document. The published outcomes are in
``shared.contracts.scoring``.
"""

import re

from marshmallow import Schema, ValidationError, fields, validate

from shared.contracts import INTEGRATION, EventRegistry
from shared.contracts.registration import LEVELS
from shared.fields import Instant, Text, account_ids, nullable


def _id():
    return fields.String(required=True, validate=validate.Length(min=1, max=100))


# --- private events -------------------------------------------------------------------


class SessionRecorded(Schema):
    """The exam session as scoring knows it (scheduled or amended, whole)."""

    session_id = _id()
    document = fields.Dict(required=True)


class _TicketFact(Schema):
    ticket_number = _id()
    session_id = _id()
    account_id = _id()
    application_id = _id()


class TicketRecorded(_TicketFact):
    """准考证 issued by admission: who sits which subjects of which level."""

    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    subjects = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    exemption = fields.Dict(required=True, allow_none=True)
    candidate = fields.Dict(required=True)  # name, id_type, id_number
    exam_year = fields.Integer(required=True)


class AttendanceRecorded(_TicketFact):
    """Checked in (CheckInRecorded) or absent (AbsenceRecorded, 缺考) for one subject."""

    subject = _id()


class TicketEnded(_TicketFact):
    """Forfeited (ForfeitRecorded) or cancelled (TicketCancellationRecorded)."""

    reason = fields.String(required=True)


class ImportRecorded(Schema):
    """An import of the marking centre's file (阅卷中心), checked whole; what it supersedes."""

    session_id = _id()
    import_id = _id()
    filename = fields.String(required=True, validate=validate.Length(min=1, max=255))
    sha256 = fields.String(required=True, validate=validate.Length(equal=64))
    rows = fields.Integer(required=True, validate=validate.Range(min=0))
    candidates = fields.Integer(required=True, validate=validate.Range(min=0))
    absent_rows = fields.Integer(required=True, validate=validate.Range(min=0))
    missing = fields.Integer(required=True, validate=validate.Range(min=0))
    imported_by = _id()
    imported_at = fields.AwareDateTime(required=True)
    supersedes = fields.String(required=True, allow_none=True)


class ScoreRows(fields.Field):
    """``[[ticket_number, subject code, score or null], ...]``, checked in one pass (a
    marshmallow field per cell would cost more than the rest of an import)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list):
            raise ValidationError("must be a list of rows")
        scores = (float, int, type(None))  # by exact type: a bool is not a score
        for i, row in enumerate(value):
            if not (type(row) is list and len(row) == 3 and type(row[0]) is str
                    and type(row[1]) is str and type(row[2]) in scores):
                raise ValidationError(f"row {i} must be [ticket_number, subject, score|null]")
        return value


class ScoreRowsRecorded(Schema):
    session_id = _id()
    import_id = _id()
    rows = ScoreRows(required=True)


class SubjectResult(Schema):
    code = _id()
    name = fields.String(required=True)
    score = fields.Float(required=True, allow_none=True)
    full_marks = fields.Float(required=True)
    pass_mark = fields.Float(required=True)
    passed = fields.Boolean(required=True)
    status = fields.String(required=True, validate=validate.OneOf(
        ["passed", "failed", "absent", "not_scored"]))


class SittingResulted(Schema):
    """A candidate's results of one sitting, written at publication."""

    account_id = _id()
    application_id = _id()
    session_id = _id()
    ticket_number = _id()
    exam_year = fields.Integer(required=True)
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    exemption = fields.Dict(required=True, allow_none=True)
    subjects = fields.List(fields.Nested(SubjectResult), required=True)
    voided = fields.String(required=True, allow_none=True)  # the reason, if voided before
    published_at = fields.AwareDateTime(required=True)


class DeadlineReached(Schema):
    session_id = _id()
    window = _id()
    published = fields.Boolean(required=True)  # whether the deadline published an import


PRIVATE = EventRegistry()
PRIVATE.register("SessionRecorded", SessionRecorded, public=False)
PRIVATE.register("TicketRecorded", TicketRecorded, public=False)
PRIVATE.register("CheckInRecorded", AttendanceRecorded, public=False)
PRIVATE.register("AbsenceRecorded", AttendanceRecorded, public=False)
PRIVATE.register("ForfeitRecorded", TicketEnded, public=False)
PRIVATE.register("TicketCancellationRecorded", TicketEnded, public=False)
PRIVATE.register("ImportRecorded", ImportRecorded, public=False)
PRIVATE.register("ScoreRowsRecorded", ScoreRowsRecorded, public=False)
PRIVATE.register("SittingResulted", SittingResulted, public=False)
PRIVATE.register("DeadlineReached", DeadlineReached, public=False)

#: every event type the scoring service stores or reads
REGISTRY = EventRegistry().include(INTEGRATION).include(PRIVATE)


# --- RPC inputs -----------------------------------------------------------------------

_ACCOUNT = validate.Regexp(r"[0-9A-Za-z]{1,64}\Z", flags=re.ASCII, error="not an account id")


class AuthoritySchema(Schema):
    """Who acts for the exam authority (考试机构)."""

    staff_id = Text(max_length=64, required=True)


class ImportScoresSchema(Schema):
    """The marking centre's file (阅卷中心) as text; its size is checked by the domain."""

    session_id = Text(max_length=100, required=True)
    filename = Text(max_length=255, required=True)
    csv = fields.String(required=True)


class SessionRefSchema(Schema):
    session_id = Text(max_length=100, required=True)


class CandidateRefSchema(Schema):
    account_id = fields.String(required=True, validate=_ACCOUNT)
    session_id = Text(max_length=100, required=True)


class SessionResultsSchema(Schema):
    session_id = Text(max_length=100, required=True)
    ticket_number = Text(max_length=100, load_default=None, allow_none=True)


class VoidScoresSchema(Schema):
    """成绩无效: whose scores, of which sitting, why; ``integrity`` asks for a record in the
    integrity archive (诚信档案), e.g. for a false commitment."""

    account_id = fields.String(required=True, validate=_ACCOUNT)
    session_id = Text(max_length=100, required=True)
    reason = Text(max_length=500, required=True)
    integrity = fields.Boolean(load_default=False)


class CountsRefSchema(SessionRefSchema):
    """A session's counts, of every candidate or (``account_ids``) only of these."""

    account_ids = account_ids()


# -- replies: what the RPC methods answer, as the gateway dumps it (its OpenAPI document is
# made from these; services/gateway/from_marshmallow.py) ---------------------------------

S, Int, B, L, F = fields.String, fields.Integer, fields.Boolean, fields.List, fields.Float


class ImportedReply(Schema):
    """A score file taken in whole (it supersedes the earlier import, if any)."""

    session_id, import_id, filename = S(required=True), S(required=True), S(required=True)
    rows, candidates = Int(required=True), Int(required=True)
    absent_rows, missing = Int(required=True), Int(required=True)
    sha256, supersedes = S(required=True), nullable(S)


class PublishedReply(Schema):
    """The scores published: how many candidates, subjects passed, qualifications."""

    session_id, published_at = S(required=True), Instant(required=True)
    candidates, passed_subjects, qualified = Int(required=True), Int(required=True), \
        Int(required=True)


class ScoresVoidedReply(Schema):
    """成绩无效: done, and the qualifications it withdrew."""

    account_id, session_id, application_id = S(required=True), S(required=True), S(required=True)
    voided = B(required=True, validate=validate.Equal(True))
    reason, integrity = S(required=True), B(required=True)
    withdrawn = L(S(), required=True)


class SubjectScoreReply(Schema):
    code, name = S(required=True), S(required=True)
    score, full_marks, pass_mark = nullable(F), nullable(F), nullable(F)
    passed, status = B(required=True), S(required=True)


class ImportSummaryReply(Schema):
    import_id, filename, sha256 = S(required=True), S(required=True), S(required=True)
    rows, candidates, absent_rows, missing = Int(required=True), Int(required=True), \
        Int(required=True), Int(required=True)
    imported_by, imported_at = nullable(S), nullable(Instant)


class SessionResultRowReply(Schema):
    ticket_number, account_id, application_id = S(required=True), S(required=True), \
        S(required=True)
    name, level, ticket_status = nullable(S), nullable(S), nullable(S)
    voided, void_reason = B(required=True), nullable(S)
    subjects = fields.Nested(SubjectScoreReply, many=True, required=True)


class SessionResultsReply(Schema):
    """A session's results as imported, before and after publication."""

    session_id, published, published_at = S(required=True), B(required=True), nullable(Instant)
    import_ = fields.Nested(ImportSummaryReply, required=True, data_key="import",
                            attribute="import")
    candidates = fields.Nested(SessionResultRowReply, many=True, required=True)


class CandidateSubjectReply(Schema):
    code, name = S(required=True), S(required=True)
    score, full_marks = nullable(F), nullable(F)
    passed, status, status_label = B(required=True), S(required=True), S(required=True)


class QualificationReply(Schema):
    qualification_id, level, status = S(required=True), S(required=True), S(required=True)
    session_id, exam_year = S(required=True), Int(required=True)
    subjects = L(fields.Raw(), required=True)
    withdrawn_reason = nullable(S)


class CandidateResultsReply(Schema):
    """查询成绩: a candidate's results of a published sitting, and the qualification."""

    session_id, session_name, exam_year = S(required=True), S(required=True), Int(required=True)
    published = B(required=True)
    published_at = nullable(Instant)
    level, ticket_number = nullable(S), nullable(S)
    subjects = fields.Nested(CandidateSubjectReply, many=True, required=True)
    voided, void_reason = B(required=True), nullable(S)
    qualification = fields.Nested(QualificationReply, required=True, allow_none=True)
