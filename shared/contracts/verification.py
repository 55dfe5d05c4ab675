"""Integration events of the verification service (资格核查): one case per application.

Every outcome names the rule that decided it (``rule``: e.g. ``2026.L1.本科.science_engineering``
or ``integrity.live-record``) and a reason a candidate can read.
"""

from marshmallow import Schema, fields, validate

from shared.contracts import INTEGRATION

PROOF_CAUSES = ("auto_check_failed", "no_commitment", "commitment_withdrawn",
                "spot_check_rejected", "exemption_claimed", "enquiry_reopened")


def _id():
    return fields.String(required=True, validate=validate.Length(min=1, max=100))


class _Case(Schema):
    application_id = _id()
    account_id = _id()
    session_id = _id()


class AutoCheckPassed(_Case):
    rule = fields.String(required=True)
    reason = fields.String(required=True)


class AutoCheckFailed(_Case):
    rule = fields.String(required=True)
    reason = fields.String(required=True)


class ProofRequested(_Case):
    cause = fields.String(required=True, validate=validate.OneOf(PROOF_CAUSES))
    reason = fields.String(required=True)


class _StaffDecision(_Case):
    registration_point = fields.String(required=True)
    staff = fields.String(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class ManualCheckPassed(_StaffDecision):
    pass


class ManualCheckRejected(_StaffDecision):
    final = fields.Boolean(required=True)  # final: no more proof accepted (报名终止)


class SpotCheckSelected(_Case):
    draw_id = _id()
    seed = fields.Integer(required=True)
    rate = fields.Float(required=True, validate=validate.Range(0, 1))


class SpotCheckPassed(_Case):
    by = fields.String(required=True)
    reason = fields.String(required=True)


class SpotCheckRejected(_Case):
    by = fields.String(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class EligibilityConfirmed(_Case):
    via = fields.String(required=True, validate=validate.OneOf(["auto", "manual"]))
    spot_checked = fields.Boolean(required=True)


class EnquiryRaised(_Case):
    """疑问核实: the candidate questions a manual-check or spot-check outcome."""

    enquiry_id = _id()
    registration_point = fields.String(required=True)
    about = fields.String(required=True)  # the outcome questioned, e.g. ManualCheckRejected
    text = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    raised_at = fields.AwareDateTime(required=True)


class EnquiryAnswered(_Case):
    enquiry_id = _id()
    registration_point = fields.String(required=True)
    staff = fields.String(required=True)
    answer = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    reopened = fields.Boolean(required=True)  # the case goes back to proof and manual check
    answered_at = fields.AwareDateTime(required=True)


class IntegrityRecordWritten(Schema):
    """诚信档案: a live record; a candidate with one may not use the commitment route."""

    record_id = _id()
    id_type = fields.String(required=True)
    id_number = fields.String(required=True)
    reason = fields.String(required=True)
    source = fields.String(required=True)  # e.g. the voided application id
    written_at = fields.AwareDateTime(required=True)


class IntegrityRecordListed(Schema):
    """诚信档案: the reference archive (the authority's, read by verification) lists this
    record, or lists it changed. Live from ``recorded_on`` up to and including
    ``expires_on`` (None: never expires). No reason: only whether one is live leaves."""

    record_id = _id()
    id_type = fields.String(required=True)
    id_number = fields.String(required=True)
    recorded_on = fields.Date(required=True)
    expires_on = fields.Date(required=True, allow_none=True)


class IntegrityRecordDelisted(Schema):
    """诚信档案: the reference archive no longer lists this record."""

    record_id = _id()


for _name, _schema in [("AutoCheckPassed", AutoCheckPassed), ("AutoCheckFailed", AutoCheckFailed),
                       ("ProofRequested", ProofRequested), ("ManualCheckPassed", ManualCheckPassed),
                       ("ManualCheckRejected", ManualCheckRejected),
                       ("SpotCheckSelected", SpotCheckSelected), ("SpotCheckPassed", SpotCheckPassed),
                       ("SpotCheckRejected", SpotCheckRejected),
                       ("EligibilityConfirmed", EligibilityConfirmed),
                       ("EnquiryRaised", EnquiryRaised), ("EnquiryAnswered", EnquiryAnswered),
                       ("IntegrityRecordWritten", IntegrityRecordWritten),
                       ("IntegrityRecordListed", IntegrityRecordListed),
                       ("IntegrityRecordDelisted", IntegrityRecordDelisted)]:
    INTEGRATION.register(_name, _schema)
