"""The admission service's entrypoints (thin): it follows registration's sessions and
confirmations, seats the confirmed candidates when confirmation closes, lets candidates
download their ticket in the printing window, forfeits tickets never printed, checks
candidates in at the door and records who was absent.

The candidate's photo comes from the account service (``get_photo``), fetched outside any
transaction; the ticket PDF is rendered by ``ticket_pdf`` (an adapter).
"""

import base64
import time
from datetime import datetime

import eventlet
from nameko.exceptions import UnknownService
from nameko.extensions import DependencyProvider
from sqlalchemy import func, select

from services.admission import domain, ticket_code, ticket_pdf
from services.admission.exam_rules import EXAM_RULES
from services.admission.projection import (
    AdmissionProjection,
    attendance,
    sessions,
    ticket_sequence,
    tickets,
)
from services.admission.schemas import (
    REGISTRY,
    AuthoritySchema,
    CheckInSchema,
    CountsRefSchema,
    RoomRefSchema,
    RosterRefSchema,
    TicketRefSchema,
)
from shared.deadlines import MORE, Deadlines, Due
from shared.dependencies import EventStoreProvider, RpcProxy, TrackingProvider
from shared.dev_secrets import ADMISSION_QR, secret
from shared.errors import NotFound, Refused, Unavailable, ValidationFailed
from shared.logging import get_logger
from shared.masking import mask_id_number
from shared.service import (
    EventSourcedService,
    command,
    config_timer,
    deadline_timer,
    load,
    upstream_events,
)
from shared.session import SessionDocument
from shared.tracking import dispatch

log = get_logger(__name__)

#: candidates whose tickets one transaction issues (bounds a plan's memory per transaction)
ISSUE_BATCH = 5000
CATCH_UP_BEFORE_PLAN_S = 60.0  # at most this long waiting for registration before the plan

# -- consuming registration's events -----------------------------------------------------

def _session_scheduled(tx, event):
    tx.append(domain.record_session(event.payload["session_id"], event.payload["document"]))


def _timetable_amended(tx, event):
    p = event.payload
    doc = domain.fold_session(tx.read_stream(domain.session_stream(p["session_id"])))
    if doc is not None:
        tx.append(domain.amend_session(doc, p["window"], datetime.fromisoformat(p["start"]),
                                       datetime.fromisoformat(p["end"])))


def _application_confirmed(tx, event):
    p = event.payload
    stream = domain.ticket_stream(p["application_id"])
    if tx.stream_version(stream):
        return  # recorded before
    events, expected = domain.record_confirmation(p), {stream: 0}
    sid = p["session_id"]
    if tx.stream_version(domain.deadline_stream(sid, "confirmation")):
        # confirmed in time, delivered after the plan: the next free seat, now
        doc = domain.fold_session(tx.read_stream(domain.session_stream(sid)))
        seating = domain.seating_stream(sid)
        plan = domain.fold_seating(tx.read_stream(seating))
        done = {name for name in ["ticket_printing"] + [domain.sitting_deadline(e["subject"])
                                                        for e in doc.exam_schedule]
                if tx.stream_version(domain.deadline_stream(sid, name))}
        ticket = domain.pending_ticket(p)
        seq, numbers = next_ticket_seq(tx)
        late = domain.seat_late(doc, ticket, plan, "ticket_printing" in done,
                                [n.removeprefix("sitting-") for n in done if n.startswith("sitting-")],
                                seq)
        events += late
        expected[seating] = plan.version
        expected[domain.NUMBERS_STREAM] = numbers
        if late[0].type == "SeatUnavailable":
            log.error("admission.capacity_short", session_id=sid, unseated=1,
                      application_id=p["application_id"], reason=domain.NO_SEAT_REASON)
    tx.append(events, expected)


def _registration_voided(tx, event):
    stream = domain.ticket_stream(event.payload["application_id"])
    ticket = domain.fold_ticket(tx.read_stream(stream))
    events = domain.void(ticket, event.payload)
    if events:
        tx.append(events, {stream: ticket.version})


# sessions, confirmations and voided registrations, as registration publishes them
on_registration_event = dispatch({
    "ExamSessionScheduled": _session_scheduled,
    "TimetableAmended": _timetable_amended,
    "ApplicationConfirmed": _application_confirmed,
    "RegistrationVoided": _registration_voided,
})


def next_ticket_seq(tx) -> tuple[int, int]:
    """(the ticket sequence's next free number, the version of its stream): the numbers
    every session shares. Before its first reservation, above every number the log's
    sessions counted for themselves (logs from before it was shared)."""
    version = tx.stream_version(domain.NUMBERS_STREAM)
    if version:
        return tx.conn.execute(select(ticket_sequence.c.next_seq).where(
            ticket_sequence.c.name == "tickets")).scalar_one(), version
    return domain.legacy_next_seq(tx.store.events_after(
        0, 1 << 40, types=["SeatingPlanned", "SeatAdded"], conn=tx.conn)), 0


class TicketKey(DependencyProvider):
    """The secret the QR codes' check values are made with (``ADMISSION_QR_KEY``; unset, a
    development key in var/, ``shared.dev_secrets``)."""

    def setup(self):
        self.key, _configured = secret(ADMISSION_QR, self.container.config)

    def get_dependency(self, worker_ctx):
        return self.key


class AdmissionService(EventSourcedService):
    name = "admission"
    store = EventStoreProvider(REGISTRY, projections=[AdmissionProjection()])
    tracking = TrackingProvider({"registration": on_registration_event})
    registration_rpc = RpcProxy("registration")
    account_rpc = RpcProxy("account")
    ticket_key = TicketKey()
    deadline_effects = Deadlines()

    # -- consumers and timers ------------------------------------------------------------

    @upstream_events("registration")
    def on_registration(self, message):
        self.tracking.receive("registration", message, self.registration_rpc.events_after)

    @config_timer()
    def catch_up(self):
        self.tracking.catch_up({"registration": self.registration_rpc.events_after})

    @deadline_timer()
    def deadlines(self):
        """Deadline effects, each once (shared.deadlines): seats and tickets when 核对确认
        closes, forfeiture when 打印准考证 closes, absences when each subject's sitting ends."""
        self.deadline_effects.run_due(self.store, self.clock.now(), self.deadline_plan())

    def deadline_plan(self):
        with self.store.read_engine.connect() as c:
            docs = [SessionDocument.from_dict(d) for d in c.execute(select(sessions.c.document)).scalars()]
        return [Due(doc.session_id, name, at,
                    lambda tx, sid=doc.session_id, name=name: self._deadline(tx, sid, name),
                    # the plan should hold everyone registration confirmed: pull first
                    prepare=self._catch_up_with_registration if name == "confirmation" else None)
                for doc in docs for at, name in domain.deadline_times(doc)]

    def _catch_up_with_registration(self, within: float = CATCH_UP_BEFORE_PLAN_S):
        """Apply everything registration has logged before seats are planned. A pull is
        skipped while a message-driven worker applies (it is making progress), so wait for
        the tracked position to reach registration's log head, not for one pull: at 10,000
        confirmations the consumer ran thousands behind, and each one applied after the plan
        took the (slower) late-seat path. Bounded: a registration that does not answer
        leaves the stragglers to that path, which is correct, only slower."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                self.catch_up()
                tracked = self.store.tracked_position("registration")
                if not self.registration_rpc.events_after(tracked, 1):
                    return
            except (Unavailable, UnknownService):  # not answering, or not running
                break
            eventlet.sleep(0.2)
        log.warning("admission.plan_before_caught_up", upstream="registration",
                    tracked=self.store.tracked_position("registration"),
                    action="confirmations applied later get the next free seat")

    def _deadline(self, tx, session_id, name):
        """One deadline's effect, in the unit of work that records it (``MORE``: a batch
        of tickets issued, more to come)."""
        if name == "seating":
            return self._issue_batch(tx, session_id)
        if name == "confirmation":
            # Hold the registration consumer's tracking row: a confirmation is applied either
            # before the plan (and is in it) or after it (and sees it: a late seat).
            tx.tracked("registration", lock=True)
        doc = _session_in(tx.conn, session_id)
        if name == "confirmation":
            rows = tx.conn.execute(select(
                tickets.c.application_id, tickets.c.level, tickets.c.subjects,
                tickets.c.registration_point, tickets.c.status).where(
                tickets.c.session_id == session_id, tickets.c.status == "awaiting_seat")).all()
            first, numbers = next_ticket_seq(tx)
            plan = domain.make_plan(doc, rows, first)
            tx.append(plan.events, {domain.seating_stream(session_id): 0,
                                    domain.plan_stream(session_id): 0,
                                    domain.NUMBERS_STREAM: numbers})
            capacity = sum(r["seats"] for v in doc.venues for r in v["rooms"])
            if plan.unseated:
                log.error("admission.capacity_short", session_id=session_id, seated=plan.seated,
                          unseated=plan.unseated, capacity=capacity,
                          action="add rooms to the session; the unseated get no ticket")
            log.info("admission.seats_planned", session_id=session_id, seated=plan.seated,
                     rooms=plan.rooms_opened, capacity=capacity)
            return
        if name == "ticket_printing":
            rows = tx.conn.execute(select(tickets).where(
                tickets.c.session_id == session_id, tickets.c.status == "issued")).all()
            events = domain.forfeit_unprinted(doc, rows)
        else:
            subject = name.removeprefix("sitting-")
            rows = tx.conn.execute(select(tickets).where(
                tickets.c.session_id == session_id, tickets.c.status.in_(domain.SEATED))).all()
            checked = tx.conn.execute(select(attendance.c.application_id).where(
                attendance.c.session_id == session_id, attendance.c.subject == subject,
                attendance.c.status == "checked_in")).scalars().all()
            events = domain.mark_absent(doc, subject, rows, checked)
        versions = {domain.ticket_stream(r.application_id): r.version for r in rows}
        tx.append(events, {e.stream_id: versions[e.stream_id] for e in events
                           if e.stream_id in versions})
        log.info("admission.deadline", session_id=session_id, deadline=name, effects=len(events))

    @staticmethod
    def _issue_batch(tx, session_id):
        """The plan's next ISSUE_BATCH tickets; ``MORE`` until the last batch (which the
        deadline mechanism records as ``seating`` run, in the same unit of work)."""
        plan_stream = domain.plan_stream(session_id)
        plan = domain.fold_plan(tx.read_stream(plan_stream))
        doc = _session_in(tx.conn, session_id)
        upcoming = (plan.order + plan.unseated)[plan.done:plan.done + ISSUE_BATCH]
        rows = tx.conn.execute(select(tickets).where(
            tickets.c.application_id.in_(upcoming))).all() if upcoming else []
        events = domain.issue_batch(doc, plan, {r.application_id: r for r in rows}, ISSUE_BATCH)
        tx.append(events, {plan_stream: plan.version,
                           **{domain.ticket_stream(r.application_id): r.version for r in rows}})
        if plan.total - plan.done - len(upcoming):
            return MORE
        log.info("admission.tickets_issued", session_id=session_id)
        return None

    # -- candidates ----------------------------------------------------------------------

    @command
    def get_ticket(self, account_id, session_id):
        """The candidate's admission ticket: number, seat, subjects with times, status."""
        ref = load(TicketRefSchema(), {"account_id": account_id, "session_id": session_id})
        row = self._ticket_row(ref)
        doc = self._session(ref["session_id"])
        return _ticket_view(row, doc)

    @command
    def download_ticket(self, account_id, session_id):
        """打印准考证: the ticket as a PDF, only in the printing window; every download is
        recorded (AdmissionTicketPrinted, with its count)."""
        ref = load(TicketRefSchema(), {"account_id": account_id, "session_id": session_id})
        row = self._ticket_row(ref, issued_only=False)
        doc = self._session(ref["session_id"])
        stream = domain.ticket_stream(row.application_id)
        now = self.clock.now()
        ticket = domain.require_printable(domain.fold_ticket(self.store.read_stream(stream)), doc, now)
        photo = self._photo(ticket.account_id)  # an RPC: outside any transaction
        pdf = ticket_pdf.render(_sheet(ticket, doc, photo, self.ticket_key))

        def decide(tx):
            t = domain.fold_ticket(tx.read_stream(stream))
            tx.append(domain.record_download(t, doc, now), {stream: t.version})

        self.store.execute(decide)
        return {"filename": f"admission-ticket-{ticket.ticket_number}.pdf",
                "content_type": "application/pdf", "data": base64.b64encode(pdf).decode()}

    # -- exam day (the exam authority's staff) -------------------------------------------

    @command
    def check_in(self, authority, data):
        """身份核验: the ticket (number or scanned QR code) and the identity document shown
        must match, for a subject on the ticket, within its sitting's check-in time."""
        who = load(AuthoritySchema(), authority)
        cmd = load(CheckInSchema(), data)
        number, session_id = cmd.get("ticket_number"), cmd.get("session_id")
        if cmd.get("qr"):
            qr_session, qr_number = ticket_code.read_payload(self.ticket_key, cmd["qr"])
            if (number and number != qr_number) or (session_id and session_id != qr_session):
                raise Refused("The scanned QR code belongs to another ticket than the number given.",
                              {"qr": "another ticket"})
            number, session_id = qr_number, qr_session
        row = self._ticket_by_number(number, session_id)
        stream = domain.ticket_stream(row.application_id)
        now = self.clock.now()

        def decide(tx):
            t = domain.fold_ticket(tx.read_stream(stream))
            doc = _session_in(tx.conn, t.session_id)
            events, record = domain.check_in(t, doc, cmd["id_type"], cmd["id_number"], cmd["subject"],
                                             now, who["staff_id"])
            tx.append(events, {stream: t.version})
            return record, doc

        record, doc = self.store.execute(decide)
        t = record.ticket
        return {"ticket_number": t.ticket_number, "name": t.candidate["name"],
                "venue": _venue(doc, t.venue), "room": t.room, "seat": t.seat,
                "subject": record.subject, "subject_name": doc.subjects[record.subject].name,
                "checked_in_at": record.checked_in_at, "already_checked_in": not record.new}

    @command
    def room_list(self, authority, session_id, venue, room):
        """考场座次表: one room's candidates by seat, with what exam day recorded."""
        load(AuthoritySchema(), authority)
        ref = load(RoomRefSchema(), {"session_id": session_id, "venue": venue, "room": room})
        doc = self._session(ref["session_id"])
        v = next((v for v in doc.venues if v["code"] == ref["venue"]), None)
        r = v and next((r for r in v["rooms"] if r["code"] == ref["room"]), None)
        if r is None:
            rooms = [f"{v['code']}/{r['code']}" for v in doc.venues for r in v["rooms"]]
            raise NotFound(f"No room {ref['venue']}/{ref['room']} in session {doc.session_id}; "
                           f"its rooms are {', '.join(rooms)}.", {"room": "unknown"})
        with self.store.read_engine.connect() as c:
            rows = c.execute(select(tickets).where(
                tickets.c.session_id == doc.session_id, tickets.c.venue == v["code"],
                tickets.c.room == r["code"]).order_by(tickets.c.seat)).all()
            marks = {}
            for a in c.execute(select(attendance).where(
                    attendance.c.session_id == doc.session_id,
                    attendance.c.application_id.in_([x.application_id for x in rows]))):
                marks.setdefault(a.application_id, {}).setdefault(a.status, []).append(a.subject)
        return {"session_id": doc.session_id, "venue": _venue(doc, v["code"]), "room": r["code"],
                "seats": r["seats"], "occupied": len(rows),
                "candidates": [{
                    "seat": x.seat, "ticket_number": x.ticket_number, "name": x.name,
                    "id_type": x.candidate["id_type"],
                    "id_number": mask_id_number(x.candidate["id_number"]),
                    "level": x.level, "subjects": list(x.subjects), "status": x.status,
                    "checked_in": sorted(marks.get(x.application_id, {}).get("checked_in", [])),
                    "absent": sorted(marks.get(x.application_id, {}).get("absent", []))}
                    for x in rows]}

    @command
    def session_tickets(self, authority, session_id, query=None, limit=None):
        """考场签到: a session's ticket holders by ticket number (those matching ``query``:
        part of the ticket number or the name), each with room, seat and what exam day
        recorded per subject, and the session's sittings with their check-in windows.
        ID numbers are masked: the door checks the document the candidate shows."""
        load(AuthoritySchema(), authority)
        args = load(RosterRefSchema(), {"session_id": session_id, "query": query,
                                        "limit": limit})
        doc = self._session(args["session_id"])
        with self.store.read_engine.connect() as c:
            rows = [r for r in c.execute(select(tickets).where(
                tickets.c.session_id == doc.session_id, tickets.c.ticket_number.is_not(None))
                .order_by(tickets.c.ticket_number))
                if domain.roster_matches(args["query"], r.ticket_number, r.name)]
            shown = rows[:args["limit"]] if args["limit"] else rows
            marks: dict[str, dict[str, list]] = {}
            for a in c.execute(select(attendance).where(
                    attendance.c.session_id == doc.session_id,
                    attendance.c.application_id.in_([x.application_id for x in shown]))):
                marks.setdefault(a.application_id, {}).setdefault(a.status, []).append(a.subject)
        return {"session_id": doc.session_id, "session_name": doc.name,
                "now": self.clock.now().isoformat(),
                "sittings": domain.check_in_sittings(doc, self.clock.now()),
                "total": len(rows),
                "candidates": [{
                    "ticket_number": x.ticket_number, "name": x.name,
                    "application_id": x.application_id, "account_id": x.account_id,
                    "id_type": x.candidate["id_type"],
                    "id_number": mask_id_number(x.candidate["id_number"]),
                    "venue": _venue(doc, x.venue), "room": x.room, "seat": x.seat,
                    "level": x.level, "subjects": list(x.subjects), "status": x.status,
                    "status_label": domain.STATUS_LABELS[x.status],
                    "checked_in": sorted(marks.get(x.application_id, {}).get("checked_in", [])),
                    "absent": sorted(marks.get(x.application_id, {}).get("absent", []))}
                    for x in shown]}

    # -- counts --------------------------------------------------------------------------

    @command
    def admission_counts(self, session_id, account_ids=None):
        """The admission funnel of one session (dashboard): seats, tickets, printing,
        forfeiture, exam day (check-ins and absences count candidate-subjects); of every
        candidate, or only of ``account_ids`` (a demo tells its own from the others')."""
        ref = load(CountsRefSchema(), {"session_id": session_id, "account_ids": account_ids})
        sid = ref["session_id"]
        of = tickets.c.session_id == sid
        if ref["account_ids"] is not None:
            of = of & tickets.c.account_id.in_(ref["account_ids"])
        with self.store.read_engine.connect() as c:
            status = dict(c.execute(select(tickets.c.status, func.count()).where(of)
                                    .group_by(tickets.c.status)).all())
            seated = c.execute(select(func.count()).where(
                of, tickets.c.seat.is_not(None))).scalar_one()
            printed = c.execute(select(func.count()).where(
                of, tickets.c.printed_count > 0)).scalar_one()
            forfeited = c.execute(select(func.count()).where(
                of, tickets.c.forfeited.is_(True))).scalar_one()
            marked = attendance.c.session_id == sid
            if ref["account_ids"] is not None:
                marked = marked & attendance.c.application_id.in_(
                    select(tickets.c.application_id).where(of))
            marks = dict(c.execute(select(attendance.c.status, func.count()).where(marked)
                                   .group_by(attendance.c.status)).all())
        return {"seats_allocated": seated, "tickets_issued": seated, "printed": printed,
                "forfeited": forfeited, "checked_in": marks.get("checked_in", 0),
                "absent": marks.get("absent", 0), "cancelled": status.get("cancelled", 0),
                "awaiting_seat": status.get("awaiting_seat", 0),
                "unseated": status.get("unseated", 0)}

    def business_counts(self):
        with self.store.read_engine.connect() as c:
            return {"tickets": dict(c.execute(select(tickets.c.status, func.count())
                                              .group_by(tickets.c.status)).all()),
                    "attendance": dict(c.execute(select(attendance.c.status, func.count())
                                                 .group_by(attendance.c.status)).all())}

    # -- helpers -------------------------------------------------------------------------

    def _session(self, session_id) -> SessionDocument:
        with self.store.read_engine.connect() as c:
            return _session_in(c, session_id)

    def _ticket_row(self, ref, issued_only=True):
        with self.store.read_engine.connect() as c:
            row = c.execute(select(tickets).where(tickets.c.account_id == ref["account_id"],
                                                  tickets.c.session_id == ref["session_id"])).first()
        if row is None:
            raise NotFound("You have no admission ticket for this exam session: tickets are issued "
                           "to confirmed applications (核对确认) when confirmation closes.",
                           {"session_id": ref["session_id"]})
        if issued_only and row.status not in (*domain.SEATED, "cancelled"):
            raise NotFound(f"No admission ticket yet: {domain.STATUS_LABELS[row.status]}.",
                           {"status": row.status})
        return row

    def _ticket_by_number(self, number, session_id):
        q = select(tickets.c.application_id, tickets.c.session_id).where(tickets.c.ticket_number == number)
        if session_id:
            q = q.where(tickets.c.session_id == session_id)
        with self.store.read_engine.connect() as c:
            rows = c.execute(q).all()
        if not rows:
            raise NotFound("No admission ticket has this number. Check the number on the ticket.",
                           {"ticket_number": "unknown"})
        if len(rows) > 1:
            raise ValidationFailed("This ticket number is used in more than one exam session; "
                                   "give the session (or scan the ticket's QR code).",
                                   {"session_id": f"one of {sorted(r.session_id for r in rows)}"})
        return rows[0]

    def _photo(self, account_id) -> bytes | None:
        try:
            photo = self.account_rpc.get_photo(account_id)
        except NotFound:
            log.warning("admission.photo_missing", account_id=account_id)
            return None
        return base64.b64decode(photo["jpeg_base64"])


def _session_in(conn, session_id) -> SessionDocument:
    d = conn.execute(select(sessions.c.document).where(sessions.c.session_id == session_id)).scalar()
    if d is None:
        raise NotFound(f"Admission has no exam session {session_id!r} (yet).", {"session_id": session_id})
    return SessionDocument.from_dict(d)


def _venue(doc, code) -> dict:
    v = next(v for v in doc.venues if v["code"] == code)
    return {"code": v["code"], "name": v["name"], "address": v["address"]}


def _subjects(doc, codes) -> list[dict]:
    out = []
    for code in codes:
        s = domain.sitting(doc, code)
        out.append({"code": code, "name": doc.subjects[code].name,
                    "start": s["start"].isoformat(), "end": s["end"].isoformat()})
    return out


def _ticket_view(row, doc) -> dict:
    w = doc.window("ticket_printing")
    return {"ticket_number": row.ticket_number, "session_id": row.session_id,
            "application_id": row.application_id, "level": row.level,
            "subjects": _subjects(doc, row.subjects), "venue": _venue(doc, row.venue),
            "room": row.room, "seat": row.seat, "status": row.status,
            "status_label": domain.STATUS_LABELS[row.status], "printed_count": row.printed_count,
            "printing_window": {"start": w.start.isoformat(), "end": w.end.isoformat()}}


def _sheet(ticket, doc, photo, key) -> ticket_pdf.TicketSheet:
    venue = _venue(doc, ticket.venue)
    return ticket_pdf.TicketSheet(
        session_name=doc.name, name=ticket.candidate["name"], id_type=ticket.candidate["id_type"],
        id_number=ticket.candidate["id_number"], ticket_number=ticket.ticket_number,
        level_name=doc.levels[ticket.level].name, venue_name=venue["name"],
        venue_address=venue["address"], room=ticket.room, seat=ticket.seat,
        subjects=tuple((doc.subjects[s].name, domain.sitting(doc, s)["start"], domain.sitting(doc, s)["end"])
                       for s in ticket.subjects),
        rules=EXAM_RULES, qr_payload=ticket_code.payload(key, ticket.session_id, ticket.ticket_number),
        photo_jpeg=photo)
