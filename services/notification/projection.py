"""Notification's read model: recipients, sessions, tickets, notices, in-site messages
and SMS deliveries. A pure fold of the service's own log, keyed by one row per entity."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from services.notification.domain import DELIVERY, MESSAGE, NOTICE
from shared.evolve import Columns
from shared.projection import Projection, Update, Upsert

metadata = MetaData()

recipients = Table(
    "recipients", metadata,
    Column("account_id", String(64), primary_key=True),
    Column("name", String(50), nullable=False),
    Column("mobile", String(20), nullable=False),  # personal data: never logged whole
    Column("registered_at", String(40), nullable=False),
)

sessions = Table(
    "sessions", metadata,
    Column("session_id", String(100), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("document", JSON, nullable=False),
    Column("upstream_position", BigInteger, nullable=False),
)

# keyed by the application (``<session>.<account>``): ticket numbers were once shared by
# two sessions of one exam year
tickets = Table(
    "tickets", metadata,
    Column("application_id", String(200), primary_key=True),
    Column("ticket_number", String(100), nullable=False),
    Column("account_id", String(64), nullable=False),
    Column("session_id", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    Column("upstream_position", BigInteger, nullable=False),
    Index("ix_tickets_session", "session_id", "status"),
    Index("ix_tickets_account", "account_id", "session_id"),
)

notices = Table(
    "notices", metadata,
    Column("notice_id", String(300), primary_key=True),
    Column("kind", String(50), nullable=False),
    Column("template", String(50), nullable=False),
    Column("account_id", String(64), nullable=False),
    Column("session_id", String(100), nullable=False),
    Column("application_id", String(200)),
    Column("window", String(30), nullable=False),
    Column("due_at", String(40)),
    Column("status", String(20), nullable=False),
    Column("message_id", String(64)),
    Column("reason", String(500)),
    Column("updated_at", String(40), nullable=False),
    Index("ix_notices_due", "status", "due_at"),
    Index("ix_notices_session", "session_id", "status"),
)

messages = Table(
    "messages", metadata,
    Column("message_id", String(64), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("session_id", String(100)),
    Column("template", String(50), nullable=False),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("read", Boolean, nullable=False),
    Column("read_at", String(40)),
    Index("ix_messages_account", "account_id", "created_at"),
)

deliveries = Table(
    "deliveries", metadata,
    Column("message_id", String(64), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("session_id", String(100)),
    Column("template", String(50), nullable=False),
    Column("text", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", String(500)),
    Column("next_attempt_at", String(40)),
    Column("queued_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
    Column("sent_at", String(40)),
    Column("provider_id", String(200)),
    Index("ix_deliveries_due", "status", "next_attempt_at"),
)


def _columns(*names: str) -> Columns:
    return Columns({name: name for name in names})


# per event type of an aggregate with a row here: its evolve, table, key and the fields the
# table keeps (what the evolve says of each event)
_AGGREGATES = (
    (NOTICE, "notices", "notice_id", _columns(
        "kind", "template", "account_id", "session_id", "application_id", "window", "due_at",
        "status", "message_id", "reason")),
    (MESSAGE, "messages", "message_id", _columns(
        "account_id", "session_id", "template", "title", "body", "created_at", "read",
        "read_at")),
    (DELIVERY, "deliveries", "message_id", _columns(
        "account_id", "session_id", "template", "text", "status", "attempts", "last_error",
        "next_attempt_at", "queued_at", "sent_at", "provider_id")),
)
ROWS = {event_type: aggregate for aggregate in _AGGREGATES for event_type in aggregate[0]}


def _row(event, at: str):
    """The row of the notice, message or delivery the event is about, from its evolve. A
    delivery's row is as new as its last send or queueing; the others as their last event."""
    evolve, table, key, columns = ROWS[event.type]
    fields = evolve.changes(event)
    values = columns(fields)
    if table == "deliveries":
        at = fields.get("sent_at") or fields.get("queued_at") or at
    if table != "messages":
        values["updated_at"] = at
    key = {key: event.payload[key]}
    yield (Upsert if event.type in evolve.opens else Update)(table, key, values)


class NotificationProjection(Projection):
    name = "notification"
    metadata = metadata
    history = "notification"  # shared/alembic/notification/

    def handle(self, event):
        p, t = event.payload, event.type
        at = event.metadata.get("occurred_at") or ""
        match t:
            case "RecipientRecorded":
                yield Upsert("recipients", {"account_id": p["account_id"]},
                             {"name": p["name"], "mobile": p["mobile"],
                              "registered_at": p["registered_at"]})
            case "SessionRecorded":
                yield Upsert("sessions", {"session_id": p["session_id"]},
                             {"name": p["document"].get("name", p["session_id"]),
                              "document": p["document"],
                              "upstream_position": p["upstream_position"]})
            case "TicketRecorded":
                yield Upsert("tickets", {"application_id": p["application_id"]}, {
                    "ticket_number": p["ticket_number"], "account_id": p["account_id"],
                    "session_id": p["session_id"], "status": p["status"],
                    "upstream_position": p["upstream_position"]})
            case _ if t in ROWS:
                yield from _row(event, at)
