"""Marshmallow schemas of the verification service: private events and RPC inputs.

Private events (``PRIVATE``, ``public=False``) stay inside the service: the case's opening
snapshot (it holds the candidate's ID number), the proof files received, the recorded
withdrawal of a commitment, an enquiry closed unanswered, the voiding of a case and voided
scores recorded on it. The published outcomes are in ``shared.contracts.verification``.

Inputs: free text is NFC-normalized, stripped, bounded, and refuses control and invisible
formatting characters (an enquiry and its answer may have line breaks).
"""

import re
import unicodedata

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from shared.contracts import INTEGRATION, EventRegistry
from shared.contracts.registration import LEVELS, Candidate, Exemption, ProofFile
from shared.fields import Instant, LocalTime, Text, nullable

MAX_RULES_DOCUMENT = 100_000  # characters of a rules document's YAML

DECISIONS = ("pass", "reject")
DEFAULT_PASS_REASON = "materials verified"
MAX_SEED = 2**31 - 1


# --- fields ---------------------------------------------------------------------------


def _id(**kwargs):
    return Text(max_length=100, required=True, **kwargs)


# --- private events -------------------------------------------------------------------


class _Case(Schema):
    application_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    account_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    session_id = fields.String(required=True, validate=validate.Length(min=1, max=100))


class RulesRef(Schema):
    """Which version of an exam year's eligibility rules (0: the shipped file)."""

    exam_year = fields.Integer(required=True)
    version = fields.Integer(required=True, validate=validate.Range(min=0))
    digest = fields.String(required=True, validate=validate.Length(equal=64))


class CaseOpened(_Case):
    """核查案件 opened for an ApplicationSubmitted: what the case needs, as submitted, and
    the eligibility rules in force (None: the exam year had none)."""

    registration_point = fields.String(required=True, validate=validate.Length(min=1, max=100))
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    commitment = fields.Boolean(required=True)  # 告知承诺 signed
    exemption = fields.Nested(Exemption, required=True, allow_none=True)
    candidate = fields.Nested(Candidate, required=True)
    rules = fields.Nested(RulesRef, allow_none=True, load_default=None)


class ProofReceived(_Case):
    files = fields.List(fields.Nested(ProofFile), required=True, validate=validate.Length(min=1))


class CommitmentWithdrawnRecorded(_Case):
    pass


class EnquiryClosed(_Case):
    """An enquiry still open when 核对确认 closed: closed unanswered (逾期视作报名不成功)."""

    enquiry_id = fields.String(required=True)
    reason = fields.String(required=True)


class CaseVoided(_Case):
    """报名无效: registration's RegistrationVoided, recorded on the case (it closes it)."""

    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
    by = fields.String(required=True)
    integrity = fields.Boolean(required=True)
    enquiry_id = fields.String(allow_none=True, load_default=None)  # the open one, closed with it


class ScoresVoidedRecorded(_Case):
    """成绩无效 with an integrity record: scoring's ScoresVoided, recorded on the case."""

    reason = fields.String(required=True)
    by = fields.String(required=True)
    integrity = fields.Boolean(required=True)


class SessionRecorded(Schema):
    """The exam session as verification knows it (scheduled or amended, whole)."""

    session_id = fields.String(required=True)
    document = fields.Dict(required=True)


class SpotCheckDrawn(Schema):
    """抽查: the draw, reproducible from its seed over its population."""

    session_id = fields.String(required=True)
    draw_id = fields.String(required=True)
    seed = fields.Integer(required=True)
    rate = fields.Float(required=True)
    population = fields.List(fields.String(), required=True)
    selected = fields.List(fields.String(), required=True)
    by = fields.String(required=True)


class DeadlineReached(Schema):
    session_id = fields.String(required=True)
    window = fields.String(required=True)


class EligibilityRulesLoaded(Schema):
    """报考条件: a version of an exam year's rules loaded by the exam authority (checked
    whole before; ``yaml`` is the text as loaded, ``replaces`` the version it supersedes)."""

    exam_year = fields.Integer(required=True, validate=validate.Range(2000, 2100))
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    document = fields.Dict(required=True)
    yaml = fields.String(required=True, validate=validate.Length(max=MAX_RULES_DOCUMENT))
    digest = fields.String(required=True, validate=validate.Length(equal=64))
    by = fields.String(required=True, validate=validate.Length(min=1, max=100))
    reason = fields.String(allow_none=True, load_default=None)
    loaded_at = fields.String(required=True)
    replaces = fields.Nested(RulesRef, allow_none=True, load_default=None)


PRIVATE = EventRegistry()
PRIVATE.register("SessionRecorded", SessionRecorded, public=False)
PRIVATE.register("SpotCheckDrawn", SpotCheckDrawn, public=False)
PRIVATE.register("DeadlineReached", DeadlineReached, public=False)
PRIVATE.register("CaseOpened", CaseOpened, public=False)
PRIVATE.register("ProofReceived", ProofReceived, public=False)
PRIVATE.register("CommitmentWithdrawnRecorded", CommitmentWithdrawnRecorded, public=False)
PRIVATE.register("EnquiryClosed", EnquiryClosed, public=False)
PRIVATE.register("CaseVoided", CaseVoided, public=False)
PRIVATE.register("ScoresVoidedRecorded", ScoresVoidedRecorded, public=False)
PRIVATE.register("EligibilityRulesLoaded", EligibilityRulesLoaded, public=False)

#: every event type the verification service stores or reads
REGISTRY = EventRegistry().include(INTEGRATION).include(PRIVATE)


# --- RPC inputs -----------------------------------------------------------------------


class Paragraphs(Text):
    """Free text that may run over several lines (an enquiry, an answer): NFC, stripped,
    bounded like ``Text``; line breaks are kept (as ``\\n``), every other control or
    invisible formatting character is refused."""

    multiline = True  # the OpenAPI document admits line breaks here

    def _deserialize(self, value, attr, data, **kwargs):
        s = fields.String._deserialize(self, value, attr, data, **kwargs)
        s = unicodedata.normalize("NFC", s).replace("\r\n", "\n")
        s = "\n".join(line.rstrip() for line in s.split("\n")).strip()
        if any(c != "\n" and unicodedata.category(c) in ("Cc", "Cf") for c in s):
            raise ValidationError("must not contain control or invisible formatting characters")
        if len(s) > self.max_length:
            raise ValidationError(f"must be at most {self.max_length} characters")
        if len(s) < self.min_length:
            raise ValidationError("must not be blank")
        return s


class _Decision(Schema):
    """pass | reject with a reason: required to reject, defaulted to pass."""

    application_id = _id()
    decision = fields.String(required=True, validate=validate.OneOf(DECISIONS))
    reason = Text(max_length=500)

    @validates_schema(skip_on_field_errors=True)
    def _reason_to_reject(self, data, **kwargs):
        if data["decision"] == "reject" and not data.get("reason"):
            raise ValidationError("a rejection needs a reason the candidate can act on", "reason")

    @post_load
    def _default_reason(self, data, **kwargs):
        data.setdefault("reason", DEFAULT_PASS_REASON)
        return data


class ManualDecisionSchema(_Decision):
    """人工核查: a registration point's decision on the proof a candidate submitted."""

    final = fields.Boolean(load_default=False)  # no more proof accepted (报名终止)

    @validates_schema(skip_on_field_errors=True)
    def _final_only_rejects(self, data, **kwargs):
        if data.get("final") and data["decision"] != "reject":
            raise ValidationError("only a rejection can be final", "final")


class SpotCheckDrawSchema(Schema):
    """抽查: the share of passed cases to draw, and the seed that makes the draw reproducible."""

    session_id = Text(max_length=100, required=True)
    rate = fields.Float(
        required=True,
        validate=validate.Range(min=0, max=1, min_inclusive=False,
                                error="the rate must be more than 0 and at most 1"),
    )
    seed = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=0, max=MAX_SEED, error=f"the seed must be 0..{MAX_SEED}"),
    )


class SpotCheckDecisionSchema(_Decision):
    """抽查复核: the exam authority's decision on a case drawn for the spot check."""


class AuthoritySchema(Schema):
    """Who acts for the exam authority (考试机构)."""

    staff_id = Text(max_length=64, required=True)


class StaffSchema(Schema):
    """Who decides: a staff member and the registration point (报名点) they work for."""

    staff_id = Text(max_length=64, required=True)
    registration_point = Text(
        max_length=20,
        required=True,
        validate=validate.Regexp(r"[0-9A-Za-z_-]+\Z", flags=re.ASCII,
                                 error="a registration point code is letters, digits, - or _"),
    )


class RaiseEnquirySchema(Schema):
    """疑问核实: the candidate's question about the rejection on their case."""

    session_id = Text(max_length=100, required=True)
    text = Paragraphs(max_length=2000, required=True)


class AnswerEnquirySchema(Schema):
    """The registration point's answer; ``reopen`` sends the case back to proof and the
    manual check."""

    enquiry_id = Text(max_length=100, required=True)
    answer = Paragraphs(max_length=2000, required=True)
    reopen = fields.Boolean(load_default=False)


class SessionRefSchema(Schema):
    session_id = Text(max_length=100, required=True)


class AuditQuerySchema(Schema):
    """Which staff decisions to list (newest first): of a session, of a staff member."""

    session_id = Text(max_length=100, load_default=None)
    staff_id = Text(max_length=100, load_default=None)
    application_id = Text(max_length=200, load_default=None)  # one candidate's application
    account_id = fields.String(load_default=None, validate=validate.Regexp(
        r"[0-9A-Za-z]{1,64}\Z", error="an account id"))  # one candidate, every session
    since = fields.AwareDateTime(load_default=None)  # from (inclusive)
    until = fields.AwareDateTime(load_default=None)  # before (exclusive)
    limit = fields.Integer(load_default=100, strict=True,
                           validate=validate.Range(min=1, max=1000))


class ExamYearSchema(Schema):
    exam_year = fields.Integer(required=True, strict=True, validate=validate.Range(2000, 2100))
    version = fields.Integer(strict=True, load_default=None, allow_none=True,
                             validate=validate.Range(min=0))


class LoadRulesSchema(Schema):
    """报考条件: a rules document (YAML) for an exam year, with why it is loaded."""

    exam_year = fields.Integer(required=True, strict=True, validate=validate.Range(2000, 2100))
    yaml = fields.String(required=True, validate=validate.Length(min=1, max=MAX_RULES_DOCUMENT))
    reason = Text(max_length=500, load_default=None, allow_none=True)



# -- replies: what the RPC methods answer, as the gateway dumps it (its OpenAPI document is
# made from these; services/gateway/from_marshmallow.py) ---------------------------------

S, Int, B, L, D = fields.String, fields.Integer, fields.Boolean, fields.List, fields.Dict


class EnquiryReply(Schema):
    """An enquiry (疑问核实) on a case, with its answer once there is one."""

    enquiry_id, application_id, session_id = S(required=True), S(required=True), S(required=True)
    registration_point, about, text = S(required=True), S(required=True), S(required=True)
    raised_at, status = Instant(required=True), S(required=True)
    answer, staff, reopened = nullable(S), nullable(S), nullable(B)
    answered_at, closed_reason = nullable(Instant), nullable(S)


class QueuedEnquiryReply(EnquiryReply):
    """An open enquiry of the staff member's point, with its case."""

    candidate_name, case_status, case_reason = nullable(S), nullable(S), nullable(S)


class CaseRowReply(Schema):
    """A case in a list."""

    application_id, session_id = S(required=True), S(required=True)
    candidate_name, level, status = nullable(S), nullable(S), S(required=True)
    proof_cause, reason, updated_at = nullable(S), nullable(S), nullable(Instant)


class QueuedCaseReply(CaseRowReply):
    """A case waiting for the manual check, and since when (seconds on the services' clock)."""

    waiting_since, waiting_s = nullable(Instant), Int(required=True)


class DrawnCaseReply(CaseRowReply):
    registration_point, spot_checked = nullable(S), nullable(B)


class RulesRefReply(Schema):
    exam_year, version, digest = Int(required=True), Int(required=True), S(required=True)


class CaseProofFileReply(Schema):
    file_id, name, content_type = S(required=True), S(required=True), S(required=True)
    size, uploaded_at, round = Int(required=True), nullable(Instant), Int(required=True)
    decision = nullable(S)


class ProofRequestReply(Schema):
    cause, reason = S(required=True), nullable(S)


class CaseReply(Schema):
    """A verification case (资格审核) with its history."""

    application_id, account_id, session_id = S(required=True), S(required=True), S(required=True)
    registration_point, level, status = S(required=True), S(required=True), S(required=True)
    commitment, spot_checked = nullable(B), nullable(B)
    auto_check = nullable(D, metadata={"description": "the automatic check: rule, outcome, why"})
    proof_cause = nullable(S)
    enquiries = L(D(), required=True, metadata={"description": "the case's enquiries"})
    rules = fields.Nested(RulesRefReply, required=True, allow_none=True)
    voided = nullable(D)
    proof_requests = fields.Nested(ProofRequestReply, many=True, required=True)
    proof_files = fields.Nested(CaseProofFileReply, many=True, required=True)
    history = L(D(), required=True, metadata={"description": "the case's events, oldest first"})


class SpotCheckDrawReply(Schema):
    """The spot-check draw just made (reproducible from its seed)."""

    draw_id, population = S(required=True), Int(required=True)
    selected = L(S(), required=True)
    seed, rate = Int(required=True), fields.Float(required=True)


class DrawReply(SpotCheckDrawReply):
    by, at = S(required=True), nullable(Instant)


class SpotCheckReply(Schema):
    """抽查: the session's draw (null before it) and the drawn cases' decisions."""

    session_id = S(required=True)
    draw = fields.Nested(DrawReply, required=True, allow_none=True)
    cases = fields.Nested(DrawnCaseReply, many=True, required=True)


class AuditRowReply(Schema):
    """A decision or look in the audit trail: who, when, what, why."""

    at, at_local = nullable(Instant), nullable(LocalTime)
    session_id, staff_id, action = nullable(S), nullable(S), S(required=True)
    registration_point = nullable(S)
    application_id, what, why = nullable(S), nullable(S), nullable(S)


class RulesVersionReply(Schema):
    version, source, digest = Int(required=True), S(required=True), S(required=True)
    loaded_by, loaded_at = nullable(S), nullable(Instant)
    reason = S(allow_none=True, metadata={"description": "why (in the versions list)"})


class RulesYearReply(RulesVersionReply):
    """An exam year with eligibility rules (报考条件) and the version in force."""

    exam_year = Int(required=True)
    levels = L(S(), required=True)


class RulesReply(Schema):
    """报考条件 of an exam year: a version with its YAML, and every version's who, when, why."""

    exam_year, version, in_force = Int(required=True), Int(required=True), Int(required=True)
    source, digest = S(required=True), S(required=True)
    levels = L(S(), required=True)
    document = D(required=True, metadata={"description": "the rules as checked"})
    yaml = S(required=True)
    versions = fields.Nested(RulesVersionReply, many=True, required=True)


class RulesLoadedReply(RulesReply):
    changed = B(required=True, metadata={"description": "false: the same as those in force"})
