"""Integration events of the registration service (报名): exam sessions and applications.

An application is keyed by ``application_id`` (one per candidate per session); every event
about it also names the ``account_id`` and ``session_id`` so consumers need no lookups.
"""

from marshmallow import Schema, fields, validate

from shared.contracts import INTEGRATION

LEVELS = ("L1", "L2")  # 一级, 二级
MAX_SUBJECTS = 10  # subjects one application may list (a level has 3)
WINDOWS = ("application", "verification", "spot_check", "confirmation", "ticket_printing",
           "exam", "scores", "certificates")


def _id(**kw):
    return fields.String(required=True, validate=validate.Length(min=1, max=100), **kw)


class _App(Schema):
    application_id = _id()
    account_id = _id()
    session_id = _id()


class ExamSessionScheduled(Schema):
    session_id = _id()
    # the whole normalized session document (shared.session.SessionDocument.to_dict())
    document = fields.Dict(keys=fields.String(), required=True)


class TimetableAmended(Schema):
    session_id = _id()
    window = fields.String(required=True, validate=validate.OneOf(WINDOWS))
    start = fields.AwareDateTime(required=True)
    end = fields.AwareDateTime(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class Exemption(Schema):
    subject = fields.String(required=True)
    ground = fields.String(required=True)  # senior_title | verifier_certificate


class Commitment(Schema):
    """告知承诺: the candidate's own signed pledge."""

    pledge_version = fields.String(required=True)
    signed_name = fields.String(required=True)
    signed_at = fields.AwareDateTime(required=True)


class Candidate(Schema):
    """A snapshot of the profile at submission: what the checks judge."""

    name = fields.String(required=True)
    id_type = fields.String(required=True)
    id_number = fields.String(required=True)
    education = fields.List(fields.Dict(), required=True)
    degrees = fields.List(fields.Dict(), required=True)
    work = fields.List(fields.Dict(), required=True)
    titles = fields.List(fields.Dict(), load_default=list)


class ApplicationSubmitted(_App):
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    subjects = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    exemption = fields.Nested(Exemption, allow_none=True, required=True)
    registration_point = fields.String(required=True)
    commitment = fields.Nested(Commitment, allow_none=True, required=True)
    candidate = fields.Nested(Candidate, required=True)
    submitted_at = fields.AwareDateTime(required=True)


class CommitmentWithdrawn(_App):
    withdrawn_at = fields.AwareDateTime(required=True)


class ProofFile(Schema):
    sha256 = fields.String(required=True, validate=validate.Length(equal=64))
    name = fields.String(required=True)
    content_type = fields.String(required=True, validate=validate.OneOf(["application/pdf", "image/jpeg"]))
    size = fields.Integer(required=True)


class ProofSubmitted(_App):
    files = fields.List(fields.Nested(ProofFile), required=True, validate=validate.Length(min=1))
    submitted_at = fields.AwareDateTime(required=True)


class ApplicationConfirmed(_App):
    """核对确认: what admission needs to seat the candidate and print the ticket."""

    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    subjects = fields.List(fields.String(), required=True)
    exemption = fields.Nested(Exemption, allow_none=True, required=True)
    registration_point = fields.String(required=True)
    candidate = fields.Dict(required=True)  # name, id_type, id_number
    confirmed_at = fields.AwareDateTime(required=True)


class ApplicationLapsed(_App):
    """逾期视为放弃报名 / 报名不成功: not confirmed (or still unresolved) when confirmation closed."""

    reason = fields.String(required=True)


class RegistrationTerminated(_App):
    """报名终止: after a final manual-check rejection."""

    reason = fields.String(required=True)


class RegistrationVoided(_App):
    """报名无效: the exam authority voids a registration at any stage, for a stated reason.

    ``integrity`` asks for an integrity-archive record (诚信档案), e.g. for a false commitment."""

    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
    by = fields.String(required=True, validate=validate.Length(min=1, max=100))
    integrity = fields.Boolean(required=True)
    candidate = fields.Dict(required=True)  # name, id_type, id_number: for the integrity record
    voided_at = fields.AwareDateTime(required=True)


INTEGRATION.register("ExamSessionScheduled", ExamSessionScheduled)
INTEGRATION.register("TimetableAmended", TimetableAmended)
INTEGRATION.register("ApplicationSubmitted", ApplicationSubmitted)
INTEGRATION.register("CommitmentWithdrawn", CommitmentWithdrawn)
INTEGRATION.register("ProofSubmitted", ProofSubmitted)
INTEGRATION.register("ApplicationConfirmed", ApplicationConfirmed)
INTEGRATION.register("ApplicationLapsed", ApplicationLapsed)
INTEGRATION.register("RegistrationTerminated", RegistrationTerminated)
INTEGRATION.register("RegistrationVoided", RegistrationVoided)
