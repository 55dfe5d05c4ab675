"""Integration events of the admission service (准考证与考场): seats, tickets, exam day.

Every event names the ``ticket_number`` and the ``application_id``, ``account_id`` and
``session_id`` it belongs to, so consumers need no lookups. A ticket number is unique
across every session (admission's one ticket sequence); logs written before numbered each
session's tickets on their own, so two sessions of one exam year may share a number there:
consumers key a ticket by its ``application_id`` (``<session>.<account>``), which no two
sessions share.
"""

from marshmallow import Schema, fields, validate

from shared.contracts import INTEGRATION
from shared.contracts.registration import LEVELS


def _id():
    return fields.String(required=True, validate=validate.Length(min=1, max=100))


class _Ticket(Schema):
    ticket_number = _id()
    application_id = _id()
    account_id = _id()
    session_id = _id()


class SeatAllocated(_Ticket):
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    subjects = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    venue = _id()       # venue code
    room = _id()        # room code
    seat = fields.Integer(required=True, validate=validate.Range(min=1))


class AdmissionTicketIssued(_Ticket):
    """What scoring needs to take results for this ticket: who, which level and subjects."""

    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    subjects = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    exemption = fields.Dict(allow_none=True, required=True)  # {subject, ground} or None
    candidate = fields.Dict(required=True)  # name, id_type, id_number
    exam_year = fields.Integer(required=True)


class AdmissionTicketPrinted(_Ticket):
    """One download of the ticket PDF (each download is recorded)."""

    printed_at = fields.AwareDateTime(required=True)
    download = fields.Integer(required=True, validate=validate.Range(min=1))  # 1 = first


class ExamForfeited(_Ticket):
    """逾期未打印准考证视为放弃考试: the printing window closed with the ticket never printed."""

    reason = fields.String(required=True)


class CandidateCheckedIn(_Ticket):
    """Identity checked at the door for one subject's sitting."""

    subject = _id()
    staff = _id()
    checked_in_at = fields.AwareDateTime(required=True)


class CandidateAbsent(_Ticket):
    """缺考: not checked in by the end of the subject's sitting."""

    subject = _id()


class AdmissionTicketCancelled(_Ticket):
    """The registration was voided (报名无效): the ticket no longer admits anyone."""

    reason = fields.String(required=True)


for _name, _schema in [("SeatAllocated", SeatAllocated),
                       ("AdmissionTicketIssued", AdmissionTicketIssued),
                       ("AdmissionTicketPrinted", AdmissionTicketPrinted),
                       ("ExamForfeited", ExamForfeited),
                       ("CandidateCheckedIn", CandidateCheckedIn),
                       ("CandidateAbsent", CandidateAbsent),
                       ("AdmissionTicketCancelled", AdmissionTicketCancelled)]:
    INTEGRATION.register(_name, _schema)
