"""Admission's read model: sessions, tickets (seat, number, status) and attendance per
subject. A pure fold of admission's own log."""

from sqlalchemy import JSON, Boolean, Column, Index, Integer, MetaData, String, Table

from services.admission.domain import TICKET
from shared.evolve import Columns
from shared.projection import Projection, Update, Upsert

metadata = MetaData()

sessions = Table(
    "sessions", metadata,
    Column("session_id", String(100), primary_key=True),
    Column("document", JSON, nullable=False),  # the document as last recorded (amended whole)
)

tickets = Table(
    "tickets", metadata,
    Column("application_id", String(200), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("session_id", String(100), nullable=False),
    Column("level", String(4), nullable=False),
    Column("subjects", JSON, nullable=False),
    Column("exemption", JSON),
    Column("registration_point", String(20), nullable=False),
    Column("candidate", JSON, nullable=False),  # name, id_type, id_number (own database only)
    Column("name", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    Column("reason", String(1000)),
    Column("ticket_number", String(100)),
    Column("venue", String(100)),
    Column("room", String(100)),
    Column("seat", Integer),
    Column("printed_count", Integer, nullable=False),
    Column("forfeited", Boolean, nullable=False),
    Column("cancelled", Boolean, nullable=False),
    Column("version", Integer, nullable=False),  # the ticket stream's version: deadlines expect it
    Column("confirmed_at", String(40), nullable=False),
    Column("updated_at", String(40)),
    Index("ix_tickets_session_status", "session_id", "status"),
    Index("ix_tickets_number", "ticket_number"),
    Index("ix_tickets_room", "session_id", "venue", "room"),
    Index("ix_tickets_account", "account_id", "session_id"),
)

# one row per ticket and subject once it is decided: checked_in | absent
attendance = Table(
    "attendance", metadata,
    Column("application_id", String(200), primary_key=True),
    Column("subject", String(100), primary_key=True),
    Column("session_id", String(100), nullable=False),
    Column("ticket_number", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    Column("at", String(40)),
    Column("staff", String(64)),
    Index("ix_attendance_session", "session_id", "subject", "status"),
)

# the ticket sequence every session shares: the next free number (``ticket-numbers``)
ticket_sequence = Table(
    "ticket_sequence", metadata,
    Column("name", String(20), primary_key=True),
    Column("next_seq", Integer, nullable=False),
)

# a Ticket's fields as the tickets table keeps them (what ``domain.TICKET`` says of each event)
TICKET_COLUMNS = Columns({
    **{name: name for name in (
        "account_id", "session_id", "level", "subjects", "exemption", "registration_point",
        "status", "reason", "ticket_number", "venue", "room", "seat", "printed_count",
        "forfeited", "cancelled", "confirmed_at")},
    "candidate": ["candidate", ("name", lambda candidate: candidate["name"])],
})


class AdmissionProjection(Projection):
    name = "admission"
    metadata = metadata
    history = "admission"  # shared/alembic/admission/

    def handle(self, event):
        p, t, at = event.payload, event.type, event.metadata.get("occurred_at")
        if t == "SessionRecorded":
            yield Upsert("sessions", {"session_id": p["session_id"]}, {"document": p["document"]})
            return
        if t == "TicketNumbersReserved":
            yield Upsert("ticket_sequence", {"name": "tickets"},
                         {"next_seq": p["first"] + p["count"]})
            return
        if not event.stream_id.startswith("ticket-"):
            return
        key = {"application_id": p["application_id"]}
        values = TICKET_COLUMNS(TICKET.changes(event) or {})
        values.update(version=event.stream_version, updated_at=at)
        if t in TICKET.opens:
            yield Upsert("tickets", key, values)
            return
        if t in ("CandidateCheckedIn", "CandidateAbsent"):
            checked = t == "CandidateCheckedIn"
            yield Upsert("attendance", {"application_id": p["application_id"], "subject": p["subject"]}, {
                "session_id": p["session_id"], "ticket_number": p["ticket_number"],
                "status": "checked_in" if checked else "absent",
                "at": p["checked_in_at"] if checked else at,
                "staff": p["staff"] if checked else None})
        yield Update("tickets", key, values)
