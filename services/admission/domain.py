"""The admission domain (准考证与考场): admission tickets, the seating plan, exam day.
Pure: no I/O, no clock reads (``now`` comes in), decisions go out as events.

Aggregates and their streams:

- ``ticket-<application_id>``: the AdmissionTicket of one confirmed application, from the
  recorded confirmation to its seat and number, downloads (打印准考证), forfeiture
  (逾期未打印视为放弃考试), cancellation (报名无效), and exam day (check-in 身份核验, absence
  缺考) per subject;
- ``seating-<session_id>``: the seating plan's state (rooms, seats used, groups per room,
  the next ticket sequence number): every seat handed out is decided against its version,
  so no seat is ever given twice;
- ``plan-<session_id>``: the plan made when confirmation closed (who sits where, in order)
  and how far its tickets have been issued, batch by batch;
- ``session-<session_id>``: the exam session document as admission knows it (whole);
- ``ticket-numbers``: the ticket sequence, one for every session this service ever seats
  (``TicketNumbersReserved``: a block of sequence numbers per plan, one per late seat).
  A session's ``ticket_number_format`` ends with ``{seq}`` zero-padded to at least
  ``SEQ_DIGITS`` digits (checked when the session is loaded), so two tickets with
  different sequence numbers below ``10**SEQ_DIGITS`` never print the same number, in one
  session or in two: a ticket number is unique across every session. Logs from before
  counted per session; the sequence then starts above every number they used;
- ``deadline-<session_id>-<name>``: a deadline effect that ran, once (expected version 0):
  ``confirmation`` (the plan), ``seating`` (all its tickets issued), ``ticket_printing``
  (forfeiture), ``sitting-<subject>`` (absence).

Ticket status::

    awaiting_seat ──(confirmation closes)──► issued ──download──► printed
        │      └──(no room left)──► unseated  │ (printing closes, never printed)
        │ voided                              ▼
        ▼                                  forfeited
      voided            issued / printed / forfeited ──RegistrationVoided──► cancelled

Integration events follow ``shared.contracts.admission``; the rest are private
(``schemas.PRIVATE``).
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field
from datetime import datetime

from services.admission import seating
from services.admission.exam_rules import CHECK_IN_OPENS_BEFORE
from shared.clock import iso, shanghai
from shared.deadlines import deadline_stream  # noqa: F401 (the one naming, re-exported)
from shared.errors import NotFound, Refused
from shared.events import NewEvent
from shared.evolve import Evolve, Step
from shared.session import SEQ_DIGITS, SessionDocument, Window, require_open

STATUS_LABELS = {
    "awaiting_seat": "已核对确认，等待编排考场",
    "unseated": "考场座位不足，尚未编排考场，请联系考试机构",
    "voided": "报名无效",
    "issued": "准考证已生成，请在打印准考证时段内下载打印",
    "printed": "准考证已打印",
    "forfeited": "逾期未打印准考证，视为放弃考试",
    "cancelled": "准考证已作废（报名无效）",
}
#: statuses of a ticket that holds a seat and a number and has not been cancelled
SEATED = ("issued", "printed", "forfeited")

FORFEIT_REASON = "not printed before the ticket printing window closed (逾期未打印准考证，视为放弃考试)"
NO_SEAT_REASON = ("every room of the session is full: no seat left for this candidate "
                  "(考场座位不足); the exam authority must add rooms")


NUMBERS_STREAM = "ticket-numbers"
#: the last sequence number a ticket may get: every number below 10**SEQ_DIGITS ends with
#: the same SEQ_DIGITS digits in every session's format, and no other number does
MAX_SEQ = 10 ** SEQ_DIGITS - 1


def ticket_stream(application_id: str) -> str:
    return f"ticket-{application_id}"


def seating_stream(session_id: str) -> str:
    return f"seating-{session_id}"


def plan_stream(session_id: str) -> str:
    return f"plan-{session_id}"


def session_stream(session_id: str) -> str:
    return f"session-{session_id}"


def sitting_deadline(subject: str) -> str:
    return f"sitting-{subject}"


# -- the session -------------------------------------------------------------------------

def fold_session(events) -> SessionDocument | None:
    """The last document recorded (scheduled, or amended: recorded whole)."""
    doc = None
    for ev in events:
        if ev.type == "SessionRecorded":
            doc = ev.payload["document"]
    return SessionDocument.from_dict(doc) if doc is not None else None


def record_session(session_id: str, document: dict) -> list[NewEvent]:
    return [NewEvent(session_stream(session_id), "SessionRecorded",
                     {"session_id": session_id, "document": document})]


def amend_session(doc: SessionDocument, window: str, start: datetime, end: datetime) -> list[NewEvent]:
    return record_session(doc.session_id, doc.amended(window, start, end).to_dict())


def sitting(doc: SessionDocument, subject: str) -> dict | None:
    return next((e for e in doc.exam_schedule if e["subject"] == subject), None)


def check_in_window(doc: SessionDocument, subject: str) -> Window:
    """When staff may check a candidate in for a subject's sitting: from
    ``CHECK_IN_OPENS_BEFORE`` before it starts until it ends."""
    s = sitting(doc, subject)
    return Window(f"check-in {subject}", s["start"] - CHECK_IN_OPENS_BEFORE, s["end"])


def deadline_times(doc: SessionDocument) -> list[tuple[datetime, str]]:
    """Every deadline effect of a session and when it falls due, in the order they run
    when due together: the plan (``confirmation``), its tickets issued (``seating``),
    forfeiture (``ticket_printing``), absences (``sitting-<subject>``)."""
    closed = doc.window("confirmation").end_exclusive
    times = [(closed, 0, "confirmation"), (closed, 1, "seating"),
             (doc.window("ticket_printing").end_exclusive, 2, "ticket_printing")]
    # absence falls due when check-in for the sitting closes: the second after it ends
    times += [(check_in_window(doc, e["subject"]).end_exclusive, 3, sitting_deadline(e["subject"]))
              for e in doc.exam_schedule]
    return [(at, name) for at, _, name in sorted(times)]


# -- the ticket --------------------------------------------------------------------------

@dataclass
class Ticket:
    application_id: str
    account_id: str
    session_id: str
    level: str
    subjects: list[str]
    exemption: dict | None
    registration_point: str
    candidate: dict  # name, id_type, id_number
    confirmed_at: str
    version: int = 0
    status: str = "awaiting_seat"
    reason: str | None = None
    ticket_number: str | None = None
    venue: str | None = None
    room: str | None = None
    seat: int | None = None
    printed_count: int = 0
    forfeited: bool = False
    cancelled: bool = False
    checked_in: dict[str, dict] = field(default_factory=dict)  # subject -> {at, staff}
    absent: set[str] = field(default_factory=set)

    @property
    def ids(self) -> dict:
        return {"application_id": self.application_id, "account_id": self.account_id,
                "session_id": self.session_id}

    @property
    def ticket_ids(self) -> dict:
        return {"ticket_number": self.ticket_number, **self.ids}


def _ticket_opened(ev) -> Ticket:
    p = ev.payload
    return Ticket(p["application_id"], p["account_id"], p["session_id"], p["level"],
                  list(p["subjects"]), p["exemption"], p["registration_point"],
                  dict(p["candidate"]), p["confirmed_at"])


def _checked_in(t: Ticket, ev) -> None:
    p = ev.payload
    t.checked_in[p["subject"]] = {"at": p["checked_in_at"], "staff": p["staff"]}


def _absent(t: Ticket, ev) -> None:
    t.absent.add(ev.payload["subject"])


# the Ticket's evolve: event type -> its step; the fold and the tickets row both use it
TICKET = Evolve("ticket", {
    "ConfirmationRecorded": Step.opening(_ticket_opened),
    "ConfirmationVoided": Step(("awaiting_seat", "unseated"), lambda ev: {
        "status": "voided", "reason": ev.payload["reason"]}),
    "SeatUnavailable": Step(("awaiting_seat",), lambda ev: {
        "status": "unseated", "reason": ev.payload["reason"]}),
    "SeatAllocated": Step(("awaiting_seat",), lambda ev: {
        k: ev.payload[k] for k in ("ticket_number", "venue", "room", "seat")}),
    "AdmissionTicketIssued": Step(("awaiting_seat",), lambda ev: {"status": "issued"}),
    "AdmissionTicketPrinted": Step(("issued", "printed"), lambda ev: {
        "status": "printed", "printed_count": ev.payload["download"]}),
    "ExamForfeited": Step(("issued",), lambda ev: {
        "status": "forfeited", "forfeited": True, "reason": ev.payload["reason"]}),
    "AdmissionTicketCancelled": Step(("awaiting_seat", *SEATED), lambda ev: {
        "status": "cancelled", "cancelled": True, "reason": ev.payload["reason"]}),
    "CandidateCheckedIn": Step(SEATED, then=_checked_in),
    "CandidateAbsent": Step(SEATED, then=_absent),
}, ident=lambda t: t.application_id)


def fold_ticket(events) -> Ticket | None:
    """The ticket as its stream left it; ``ValueError`` on a move the chart does not have."""
    return TICKET.fold(events)


def record_confirmation(p: dict) -> list[NewEvent]:
    """An ApplicationConfirmed (核对确认) from registration: the candidate awaits a seat."""
    c = p["candidate"]
    return [NewEvent(ticket_stream(p["application_id"]), "ConfirmationRecorded", {
        "application_id": p["application_id"], "account_id": p["account_id"],
        "session_id": p["session_id"], "level": p["level"], "subjects": list(p["subjects"]),
        "exemption": p["exemption"], "registration_point": p["registration_point"],
        "candidate": {"name": c["name"], "id_type": c["id_type"], "id_number": c["id_number"]},
        "confirmed_at": p["confirmed_at"]})]


def pending_ticket(p: dict) -> Ticket:
    """The ticket an ApplicationConfirmed payload opens (as ``record_confirmation`` records it)."""
    q = record_confirmation(p)[0].payload
    return Ticket(q["application_id"], q["account_id"], q["session_id"], q["level"],
                  q["subjects"], q["exemption"], q["registration_point"], q["candidate"],
                  q["confirmed_at"])


def void(ticket: Ticket | None, p: dict) -> list[NewEvent]:
    """RegistrationVoided (报名无效): a ticket no longer admits; a candidate not seated yet
    will not be. Nothing if admission never had the application confirmed."""
    if ticket is None or ticket.status in ("voided", "cancelled"):
        return []
    reason = f"registration voided: {p['reason']}"
    stream = ticket_stream(ticket.application_id)
    if ticket.ticket_number is None:
        return [NewEvent(stream, "ConfirmationVoided", {**ticket.ids, "reason": reason})]
    return [NewEvent(stream, "AdmissionTicketCancelled", {**ticket.ticket_ids, "reason": reason})]


# -- seating -----------------------------------------------------------------------------

@dataclass
class Seating:
    session_id: str
    rooms: list[seating.Room]
    next_seq: int
    version: int = 0


def fold_seating(events) -> Seating | None:
    """None until the plan was made."""
    s = None
    for ev in events:
        p = ev.payload
        if ev.type == "SeatingPlanned":
            s = Seating(p["session_id"], [seating.Room.from_dict(r) for r in p["rooms"]],
                        p["next_seq"])
        elif ev.type == "SeatAdded" and s is not None:
            room = next(r for r in s.rooms if (r.venue, r.room) == (p["venue"], p["room"]))
            if p["seat"] != room.used + 1:
                raise ValueError(f"SeatAdded gives seat {p['seat']} in {p['venue']}/{p['room']}, "
                                 f"whose next free seat is {room.used + 1}")
            seating.take(room, p["group"])
            s.next_seq = p["seq"] + 1
        if s is not None:
            s.version = ev.stream_version
    return s


# -- the ticket sequence (one for every session) -----------------------------------------

def legacy_next_seq(events) -> int:
    """Where the sequence starts in a log from before it was shared: above every sequence
    number a session's own count gave (``SeatingPlanned`` and ``SeatAdded``)."""
    top = 0
    for ev in events:
        if ev.type == "SeatingPlanned":
            top = max(top, ev.payload["next_seq"] - 1)
        elif ev.type == "SeatAdded":
            top = max(top, ev.payload["seq"])
    return top + 1


def fold_numbers(events, start: int = 1) -> int:
    """The next free sequence number after the reservations (``start`` if none)."""
    nxt = start
    for ev in events:
        if ev.type == "TicketNumbersReserved":
            nxt = ev.payload["first"] + ev.payload["count"]
    return nxt


def reserve_numbers(session_id: str, first: int, count: int) -> NewEvent:
    """Sequence numbers first … first + count - 1 for ``session_id``'s tickets."""
    last = first + count - 1
    if last > MAX_SEQ:
        raise Refused(f"The ticket sequence is used up: {count} more ticket(s) for "
                      f"{session_id} would need sequence number {last}, beyond {MAX_SEQ} "
                      f"({SEQ_DIGITS} digits, shared by every session so that no two tickets "
                      "ever get one number).", {"ticket_number": "sequence used up"})
    return NewEvent(NUMBERS_STREAM, "TicketNumbersReserved",
                    {"session_id": session_id, "first": first, "count": count})


def ticket_number(doc: SessionDocument, ticket, seq: int) -> str:
    """The configured format (``ticket_number_format``): {year} {point} {level} {seq}, the
    sequence shared by every session (``reserve_numbers``)."""
    return doc.ticket_number_format.format(year=doc.exam_year, point=ticket.registration_point,
                                           level=ticket.level, seq=seq)


def _issue(doc: SessionDocument, t, venue: str, room: str, seat: int, number: str) -> list[NewEvent]:
    stream = ticket_stream(t.application_id)
    ids = {"ticket_number": number, "application_id": t.application_id,
           "account_id": t.account_id, "session_id": t.session_id}
    return [
        NewEvent(stream, "SeatAllocated", {**ids, "level": t.level, "subjects": list(t.subjects),
                                           "venue": venue, "room": room, "seat": seat}),
        NewEvent(stream, "AdmissionTicketIssued", {
            **ids, "level": t.level, "subjects": list(t.subjects), "exemption": t.exemption,
            "candidate": {"name": t.candidate["name"], "id_type": t.candidate["id_type"],
                          "id_number": t.candidate["id_number"]},
            "exam_year": doc.exam_year}),
    ]


def _unseated(t) -> NewEvent:
    return NewEvent(ticket_stream(t.application_id), "SeatUnavailable", {
        "application_id": t.application_id, "account_id": t.account_id,
        "session_id": t.session_id, "reason": NO_SEAT_REASON})


@dataclass
class Plan:
    """The seating plan made when confirmation closed, and how far its tickets are issued.

    ``order``: the seated application ids in plan order (the i-th gets sequence number
    ``first_seq + i`` and the i-th seat of the rooms filled in order; plans made before
    the sequence was shared start at 1); ``unseated``: those the rooms
    could not hold; ``rooms``: (venue, room, how many it seats). ``done`` counts the
    positions of ``order + unseated`` already issued (or refused)."""

    session_id: str
    order: list[str]
    unseated: list[str]
    rooms: list[tuple[str, str, int]]
    first_seq: int = 1
    done: int = 0
    version: int = 0
    _starts: list[int] | None = field(default=None, repr=False)

    @property
    def total(self) -> int:
        return len(self.order) + len(self.unseated)

    def seat_of(self, i: int) -> tuple[str, str, int]:
        """(venue, room, seat) of the i-th seated candidate (a binary search over the rooms'
        first positions: a plan of thousands of rooms is issued in linear time)."""
        if self._starts is None or len(self._starts) != len(self.rooms) + 1:
            self._starts = list(itertools.accumulate((c for _, _, c in self.rooms), initial=0))
        if not 0 <= i < self._starts[-1]:
            raise IndexError("beyond the plan's seats")
        k = bisect.bisect_right(self._starts, i) - 1
        venue, room, _ = self.rooms[k]
        return venue, room, i - self._starts[k] + 1


def fold_plan(events) -> Plan | None:
    plan = None
    for ev in events:
        p = ev.payload
        if ev.type == "SeatPlanMade":
            plan = Plan(p["session_id"], list(p["order"]), list(p["unseated"]),
                        [(r["venue"], r["room"], r["count"]) for r in p["rooms"]],
                        p.get("first_seq") or 1)
        elif ev.type == "SeatPlanProgressed" and plan is not None:
            plan.done = p["done"]
        if plan is not None:
            plan.version = ev.stream_version
    return plan


@dataclass
class PlanDecision:
    events: list[NewEvent]
    seated: int
    unseated: int
    rooms_opened: int


def make_plan(doc: SessionDocument, pending, first_seq: int) -> PlanDecision:
    """When 核对确认 closes: the seating plan for every candidate awaiting a seat (objects
    with ``application_id``, ``level``, ``subjects``, ``registration_point``, ``status``).
    Same candidates, same plan; their sequence numbers are reserved from ``first_seq`` on
    (the shared sequence's next free number). The plan is decided whole here, once; its tickets are then
    issued in batches (``issue_batch``), so no transaction has to hold tens of thousands of
    tickets at once, and an interrupted issue resumes where it stopped."""
    waiting = [t for t in pending if t.status == "awaiting_seat"]
    rooms = seating.rooms_of(doc.venues)
    placements, left = seating.plan(waiting, rooms)
    numbers: dict[str, str] = {}
    for pl in placements:
        number = ticket_number(doc, pl.candidate, first_seq + pl.order)
        if number in numbers:
            raise Refused(f"The ticket number format {doc.ticket_number_format!r} gives "
                          f"{number} to two candidates ({numbers[number]} and "
                          f"{pl.candidate.application_id}); the session's format must make "
                          "numbers unique.", {"ticket_number_format": "numbers collide"})
        numbers[number] = pl.candidate.application_id
    sid = doc.session_id
    events = [
        NewEvent(seating_stream(sid), "SeatingPlanned", {
            "session_id": sid, "rooms": [r.to_dict() for r in rooms],
            "next_seq": first_seq + len(placements), "seated": len(placements),
            "unseated": len(left)}),
        NewEvent(plan_stream(sid), "SeatPlanMade", {
            "session_id": sid, "order": [pl.candidate.application_id for pl in placements],
            "unseated": [t.application_id for t in left],
            "rooms": [{"venue": r.venue, "room": r.room, "count": r.used} for r in rooms if r.used],
            "first_seq": first_seq}),
    ]
    if placements:
        events.append(reserve_numbers(sid, first_seq, len(placements)))
    return PlanDecision(events, len(placements), len(left), sum(1 for r in rooms if r.used))


def issue_batch(doc: SessionDocument, plan: Plan, tickets, limit: int) -> list[NewEvent]:
    """The next ``limit`` positions of the plan: SeatAllocated + AdmissionTicketIssued for
    the seated, SeatUnavailable for those left over, skipping anyone no longer awaiting a
    seat (voided meanwhile: the seat stays empty). ``tickets``: application id -> ticket
    (at least those of these positions). After the last batch (``plan_done``) the deadline
    mechanism records ``seating`` as run, in the same unit of work."""
    start, stop = plan.done, min(plan.done + limit, plan.total)
    events: list[NewEvent] = []
    seated = len(plan.order)
    for i in range(start, stop):
        app = plan.order[i] if i < seated else plan.unseated[i - seated]
        t = tickets.get(app)
        if t is None or t.status != "awaiting_seat":
            continue
        if i < seated:
            venue, room, seat = plan.seat_of(i)
            events += _issue(doc, t, venue, room, seat, ticket_number(doc, t, plan.first_seq + i))
        else:
            events.append(_unseated(t))
    events.append(NewEvent(plan_stream(plan.session_id), "SeatPlanProgressed",
                           {"session_id": plan.session_id, "done": stop}))
    return events


def seat_late(doc: SessionDocument, ticket: Ticket, plan: Seating, printing_closed: bool,
              sittings_ended, seq: int) -> list[NewEvent]:
    """A confirmation that reached admission after the plan was made (confirmed in time,
    delivered late): the next free seat, the ticket with sequence number ``seq`` (the
    shared sequence's next free one), and the deadline effects that already ran for
    everyone else (forfeiture if printing has closed, absence for sittings over)."""
    group = seating.group_key(ticket.level, ticket.subjects)
    room = seating.late_seat(plan.rooms, group)
    if room is None:
        return [_unseated(ticket)]
    reserved = reserve_numbers(doc.session_id, seq, 1)
    seat = seating.take(room, group)
    plan.next_seq = seq + 1
    number = ticket_number(doc, ticket, seq)
    events = [reserved, NewEvent(seating_stream(doc.session_id), "SeatAdded", {
        "session_id": doc.session_id, "application_id": ticket.application_id,
        "venue": room.venue, "room": room.room, "seat": seat, "seq": seq, "group": group})]
    events += _issue(doc, ticket, room.venue, room.room, seat, number)
    ids = {"ticket_number": number, **ticket.ids}
    stream = ticket_stream(ticket.application_id)
    if printing_closed:
        events.append(NewEvent(stream, "ExamForfeited", {**ids, "reason": FORFEIT_REASON}))
    for subject in ticket.subjects:
        if subject in set(sittings_ended):
            events.append(NewEvent(stream, "CandidateAbsent", {**ids, "subject": subject}))
    return events


# -- printing (打印准考证) -----------------------------------------------------------------

def require_printable(ticket: Ticket | None, doc: SessionDocument, now: datetime) -> Ticket:
    """May the candidate download their ticket now? ``ticket`` folded from its stream."""
    if ticket is None:
        raise NotFound("You have no admission ticket for this exam session: tickets are issued "
                       "to confirmed applications (核对确认) when confirmation closes.",
                       {"session_id": doc.session_id})
    if ticket.status == "awaiting_seat":
        raise Refused("Your ticket is not issued yet: seats are allocated when confirmation "
                      f"closes ({shanghai(doc.window('confirmation').end)}).",
                      {"status": ticket.status})
    if ticket.status in ("unseated", "voided", "cancelled", "forfeited"):
        raise Refused(f"There is no admission ticket to print: {STATUS_LABELS[ticket.status]} "
                      f"({ticket.reason}). Contact your registration point.",
                      {"status": ticket.status})
    require_open(doc, "ticket_printing", now, "Downloading the admission ticket (打印准考证)")
    return ticket


def record_download(ticket: Ticket | None, doc: SessionDocument, now: datetime) -> list[NewEvent]:
    """Every download is recorded, with its count."""
    t = require_printable(ticket, doc, now)
    return [NewEvent(ticket_stream(t.application_id), "AdmissionTicketPrinted", {
        **t.ticket_ids, "printed_at": iso(now), "download": t.printed_count + 1})]


def forfeit_unprinted(doc: SessionDocument, tickets) -> list[NewEvent]:
    """When 打印准考证 closes: every ticket never printed is forfeited (逾期未打印准考证，视为放弃
    考试). ``tickets``: the session's, with ``status``, ids and ``ticket_number``."""
    events = []
    for t in tickets:
        if t.status == "issued":
            events.append(NewEvent(ticket_stream(t.application_id), "ExamForfeited", {
                "ticket_number": t.ticket_number, "application_id": t.application_id,
                "account_id": t.account_id, "session_id": t.session_id,
                "reason": FORFEIT_REASON}))
    return events


# -- exam day ----------------------------------------------------------------------------

def _same_document(candidate: dict, id_type: str, id_number: str) -> bool:
    return (candidate["id_type"] == id_type
            and candidate["id_number"].strip().upper() == id_number.strip().upper())


@dataclass(frozen=True)
class CheckIn:
    ticket: Ticket
    subject: str
    checked_in_at: str
    staff: str
    new: bool  # False: already checked in, the earlier record answered


def check_in(ticket: Ticket | None, doc: SessionDocument, id_type: str, id_number: str,
             subject: str, now: datetime, staff: str) -> tuple[list[NewEvent], CheckIn]:
    """身份核验 at the door, for one subject's sitting. Refusals name the reason; a second
    check-in for the same subject answers with the first (no second event)."""
    if ticket is None or ticket.ticket_number is None:
        raise NotFound("No admission ticket has this number. Check the number on the ticket.",
                       {"ticket_number": "unknown"})
    if not _same_document(ticket.candidate, id_type, id_number):
        raise Refused("The identity document does not match the candidate on this ticket: "
                      "the candidate must show the document they registered with.",
                      {"id_number": "does not match the ticket"})
    if ticket.cancelled:
        raise Refused(f"This ticket has been cancelled and no longer admits: {ticket.reason}.",
                      {"ticket": "cancelled"})
    if ticket.forfeited:
        raise Refused("This ticket was never printed before the printing window closed, so the "
                      "exam is forfeited (逾期未打印准考证，视为放弃考试).", {"ticket": "forfeited"})
    if subject not in ticket.subjects:
        raise Refused(f"Subject {subject} is not on this ticket; it admits to "
                      f"{', '.join(ticket.subjects)}.", {"subject": "not on this ticket"})
    if subject in ticket.checked_in:
        done = ticket.checked_in[subject]
        return [], CheckIn(ticket, subject, done["at"], done["staff"], False)
    window = check_in_window(doc, subject)
    if not window.contains(now):
        when = "has not opened yet" if now < window.start else "has closed"
        raise Refused(f"Check-in for {subject} is open from {shanghai(window.start)} until the "
                      f"sitting ends at {shanghai(window.end)} (Asia/Shanghai); it {when}, it is "
                      f"now {shanghai(now)}.",
                      {"subject": "outside its sitting", "opens": iso(window.start),
                       "closes": iso(window.end)})
    at = iso(now)
    event = NewEvent(ticket_stream(ticket.application_id), "CandidateCheckedIn", {
        **ticket.ticket_ids, "subject": subject, "staff": staff, "checked_in_at": at})
    return [event], CheckIn(ticket, subject, at, staff, True)


def mark_absent(doc: SessionDocument, subject: str, tickets, checked_in) -> list[NewEvent]:
    """When a subject's sitting ends: every seated, non-cancelled ticket holding the subject
    and not checked in for it is absent (缺考), forfeited ones included (they did not sit).
    ``checked_in``: application ids checked in for the subject."""
    events = []
    checked = set(checked_in)
    for t in tickets:
        if t.status in SEATED and subject in t.subjects and t.application_id not in checked:
            events.append(NewEvent(ticket_stream(t.application_id), "CandidateAbsent", {
                "ticket_number": t.ticket_number, "application_id": t.application_id,
                "account_id": t.account_id, "session_id": t.session_id, "subject": subject}))
    return events


# -- the check-in screen (考场签到) ----------------------------------------------------------

def roster_matches(query: str | None, ticket_number: str | None, name: str) -> bool:
    """考生查找 at the door: a query matches a ticket holder when it is part of the ticket
    number (letters in any case) or of the name; spaces do not count; no query matches all."""
    q = "".join((query or "").split()).casefold()
    if not q:
        return True
    return q in (ticket_number or "").casefold() or q in "".join(name.split()).casefold()


def check_in_sittings(doc: SessionDocument, now: datetime) -> list[dict]:
    """The session's sittings in time order, each with its check-in window and whether it
    is open at ``now`` (the screen offers that sitting first)."""
    out = []
    for e in sorted(doc.exam_schedule, key=lambda e: (e["start"], e["subject"])):
        w = check_in_window(doc, e["subject"])
        out.append({"subject": e["subject"], "name": doc.subjects[e["subject"]].name,
                    "start": iso(e["start"]), "end": iso(e["end"]),
                    "check_in_opens": iso(w.start), "check_in_closes": iso(w.end),
                    "open": w.contains(now)})
    return out
