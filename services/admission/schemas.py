"""Marshmallow schemas of the admission service: private events and RPC inputs.

Private events (``public=False``) stay inside the service: the confirmation as recorded
(it holds the candidate's ID number), the seating plan's state, the session document as
admission knows it, and the deadlines that ran. The published events are in
``shared.contracts.admission``.
"""

import re

from marshmallow import Schema, ValidationError, fields, post_load, validate

from shared.contracts import INTEGRATION, EventRegistry
from shared.contracts.account import ID_TYPES
from shared.contracts.registration import LEVELS, Exemption
from shared.fields import Instant, Text, account_ids, nullable


def _id():
    return fields.String(required=True, validate=validate.Length(min=1, max=100))


# -- private events ----------------------------------------------------------------------

class _App(Schema):
    application_id = _id()
    account_id = _id()
    session_id = _id()


class CandidateIdentity(Schema):
    name = fields.String(required=True)
    id_type = fields.String(required=True)
    id_number = fields.String(required=True)


class ConfirmationRecorded(_App):
    """核对确认 as admission records it: the candidate awaits a seat."""

    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    subjects = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    exemption = fields.Nested(Exemption, allow_none=True, required=True)
    registration_point = fields.String(required=True)
    candidate = fields.Nested(CandidateIdentity, required=True)
    confirmed_at = fields.AwareDateTime(required=True)


class ConfirmationVoided(_App):
    """报名无效 before a seat was allocated: the candidate will not be seated."""

    reason = fields.String(required=True)


class SeatUnavailable(_App):
    """No seat could be given (every room full): refused loudly, never seated twice."""

    reason = fields.String(required=True)


class PlannedRoom(Schema):
    venue = fields.String(required=True)
    room = fields.String(required=True)
    seats = fields.Integer(required=True, validate=validate.Range(min=1))
    used = fields.Integer(required=True, validate=validate.Range(min=0))
    groups = fields.List(fields.String(), required=True)


class SeatingPlanned(Schema):
    """The plan made when confirmation closed: rooms as filled, and the ticket sequence
    number after the plan's (a session's own count in logs from before it was shared)."""

    session_id = _id()
    rooms = fields.List(fields.Nested(PlannedRoom), required=True)
    next_seq = fields.Integer(required=True, validate=validate.Range(min=1))
    seated = fields.Integer(required=True)
    unseated = fields.Integer(required=True)


class SeatAdded(Schema):
    """One seat handed out after the plan (a confirmation delivered late)."""

    session_id = _id()
    application_id = _id()
    venue = _id()
    room = _id()
    seat = fields.Integer(required=True, validate=validate.Range(min=1))
    seq = fields.Integer(required=True, validate=validate.Range(min=1))
    group = fields.String(required=True)


class PlanRoom(Schema):
    venue = fields.String(required=True)
    room = fields.String(required=True)
    count = fields.Integer(required=True, validate=validate.Range(min=1))


class SeatPlanMade(Schema):
    """Who sits where: the seated in plan order (sequence ``first_seq + i``, the i-th seat
    of the rooms in order), those left without a seat, and how many each opened room seats.
    Plans made before the sequence was shared by every session have no ``first_seq``: 1."""

    session_id = _id()
    order = fields.List(fields.String(), required=True)
    unseated = fields.List(fields.String(), required=True)
    rooms = fields.List(fields.Nested(PlanRoom), required=True)
    first_seq = fields.Integer(load_default=None, allow_none=True,
                               validate=validate.Range(min=1))


class TicketNumbersReserved(Schema):
    """Sequence numbers ``first`` … ``first + count - 1`` of the ticket sequence, which
    every session shares (``ticket-numbers``), taken for ``session_id``'s tickets."""

    session_id = _id()
    first = fields.Integer(required=True, validate=validate.Range(min=1))
    count = fields.Integer(required=True, validate=validate.Range(min=1))


class SeatPlanProgressed(Schema):
    """Tickets issued (or seats refused) for the plan's first ``done`` positions."""

    session_id = _id()
    done = fields.Integer(required=True, validate=validate.Range(min=0))


class SessionRecorded(Schema):
    session_id = _id()
    document = fields.Dict(required=True)


class DeadlineReached(Schema):
    session_id = _id()
    window = fields.String(required=True)  # confirmation|seating|ticket_printing|sitting-<subject>


PRIVATE = EventRegistry()
for _name, _schema in [("ConfirmationRecorded", ConfirmationRecorded),
                       ("ConfirmationVoided", ConfirmationVoided),
                       ("SeatUnavailable", SeatUnavailable),
                       ("SeatingPlanned", SeatingPlanned),
                       ("SeatAdded", SeatAdded),
                       ("SeatPlanMade", SeatPlanMade),
                       ("SeatPlanProgressed", SeatPlanProgressed),
                       ("TicketNumbersReserved", TicketNumbersReserved),
                       ("SessionRecorded", SessionRecorded),
                       ("DeadlineReached", DeadlineReached)]:
    PRIVATE.register(_name, _schema, public=False)

#: every event type the admission service stores or reads
REGISTRY = EventRegistry().include(INTEGRATION).include(PRIVATE)


# -- RPC inputs --------------------------------------------------------------------------

_CODE = validate.Regexp(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z", flags=re.ASCII,
                        error="letters, digits, '.', '_' or '-'")


class TicketRefSchema(Schema):
    """A candidate's own ticket: the account (filled by the gateway) and the session."""

    account_id = fields.String(required=True, validate=[
        validate.Length(min=1, max=64),
        validate.Regexp(r"[A-Za-z0-9]+\Z", flags=re.ASCII, error="expected an account id")])
    session_id = Text(max_length=100, required=True, validate=_CODE)


class AuthoritySchema(Schema):
    """Who acts for the exam authority (考试机构): exam-day staff included."""

    staff_id = Text(max_length=64, required=True)


class CheckInSchema(Schema):
    """身份核验: the ticket (typed in, or its QR code scanned), the identity document shown,
    and the subject being sat. ``session_id`` only where a number is used by two sessions
    (numbers issued before the ticket sequence was shared by every session)."""

    ticket_number = Text(max_length=100)
    qr = Text(max_length=300)
    session_id = Text(max_length=100, validate=_CODE)
    id_type = fields.String(required=True, validate=validate.OneOf(ID_TYPES))
    id_number = Text(max_length=32, required=True)
    subject = Text(max_length=100, required=True, validate=_CODE)

    @post_load
    def _ticket_or_qr(self, data, **kwargs):
        if not data.get("ticket_number") and not data.get("qr"):
            raise ValidationError("give the ticket number, or the scanned QR code", "ticket_number")
        return data


class RoomRefSchema(Schema):
    session_id = Text(max_length=100, required=True, validate=_CODE)
    venue = Text(max_length=100, required=True, validate=_CODE)
    room = Text(max_length=100, required=True, validate=_CODE)


class SessionRefSchema(Schema):
    session_id = Text(max_length=100, required=True, validate=_CODE)


class RosterRefSchema(Schema):
    """考场签到: a session's ticket holders, those matching ``query`` (ticket number or
    name), at most ``limit`` of them (all when none is given)."""

    session_id = Text(max_length=100, required=True, validate=_CODE)
    query = Text(max_length=100, min_length=0, allow_none=True, load_default=None)
    limit = fields.Integer(allow_none=True, load_default=None,
                           validate=validate.Range(min=1, max=100_000), strict=True)


class CountsRefSchema(SessionRefSchema):
    """A session's counts, of every candidate or (``account_ids``) only of these."""

    account_ids = account_ids()


# -- replies: what the RPC methods answer, as the gateway dumps it (its OpenAPI document is
# made from these; services/gateway/from_marshmallow.py) ---------------------------------

S, Int, B, L = fields.String, fields.Integer, fields.Boolean, fields.List


class VenueReply(Schema):
    code, name, address = S(required=True), S(required=True), S(required=True)


class SittingReply(Schema):
    code, name = S(required=True), S(required=True)
    start, end = Instant(required=True), Instant(required=True)


class PrintingWindowReply(Schema):
    start, end = Instant(required=True), Instant(required=True)


class TicketReply(Schema):
    """准考证: the admission ticket's number, seat, subjects with their times, status."""

    ticket_number, session_id, application_id = nullable(S), S(required=True), S(required=True)
    level = S(required=True)
    subjects = fields.Nested(SittingReply, many=True, required=True)
    venue = fields.Nested(VenueReply, required=True, allow_none=True)
    room, seat = nullable(S), nullable(Int)
    status, status_label = S(required=True), S(required=True)
    printed_count = Int(required=True)
    printing_window = fields.Nested(PrintingWindowReply, required=True)


class CheckInReply(Schema):
    """身份核验: who was checked in, where they sit, for which subject, when."""

    ticket_number, name = S(required=True), S(required=True)
    venue = fields.Nested(VenueReply, required=True)
    room, seat = S(required=True), Int(required=True)
    subject, subject_name = S(required=True), S(required=True)
    checked_in_at = Instant(required=True)
    already_checked_in = B(required=True)


class RoomCandidateReply(Schema):
    seat, ticket_number, name = nullable(Int), nullable(S), S(required=True)
    id_type = S(required=True)
    id_number = S(required=True, metadata={"description": "masked: the last 4 characters"})
    level = S(required=True)
    subjects = L(S(), required=True)
    status = S(required=True)
    checked_in, absent = L(S(), required=True), L(S(), required=True)


class CheckInSittingReply(Schema):
    """A sitting with its check-in window (opens before the start, closes at the end)."""

    subject, name = S(required=True), S(required=True)
    start, end = Instant(required=True), Instant(required=True)
    check_in_opens, check_in_closes = Instant(required=True), Instant(required=True)
    open = B(required=True)


class RosterCandidateReply(Schema):
    ticket_number, name = S(required=True), S(required=True)
    application_id, account_id = S(required=True), S(required=True)
    id_type = S(required=True)
    id_number = S(required=True, metadata={"description": "masked: the last 4 characters"})
    venue = fields.Nested(VenueReply, required=True, allow_none=True)
    room, seat = nullable(S), nullable(Int)
    level = S(required=True)
    subjects = L(S(), required=True)
    status, status_label = S(required=True), S(required=True)
    checked_in, absent = L(S(), required=True), L(S(), required=True)


class RosterReply(Schema):
    """考场签到: a session's ticket holders matching the query, and its sittings."""

    session_id, session_name, now = S(required=True), S(required=True), Instant(required=True)
    sittings = fields.Nested(CheckInSittingReply, many=True, required=True)
    total = Int(required=True)
    candidates = fields.Nested(RosterCandidateReply, many=True, required=True)


class RoomListReply(Schema):
    """考场座次表: one room's candidates by seat, with exam day's marks."""

    session_id = S(required=True)
    venue = fields.Nested(VenueReply, required=True)
    room, seats, occupied = S(required=True), Int(required=True), Int(required=True)
    candidates = fields.Nested(RoomCandidateReply, many=True, required=True)
