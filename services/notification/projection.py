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
            case "NoticeScheduled":
                yield Upsert("notices", {"notice_id": p["notice_id"]}, {
                    "kind": p["kind"], "template": p["template"], "account_id": p["account_id"],
                    "session_id": p["session_id"], "application_id": p["application_id"],
                    "window": p["window"], "due_at": p["due_at"], "status": "scheduled",
                    "message_id": None, "reason": None, "updated_at": at})
            case "NoticeRescheduled":
                yield Update("notices", {"notice_id": p["notice_id"]},
                             {"due_at": p["due_at"], "reason": p["reason"], "updated_at": at})
            case "NoticeCancelled" | "NoticeExpired":
                yield Update("notices", {"notice_id": p["notice_id"]}, {
                    "status": "cancelled" if t == "NoticeCancelled" else "expired",
                    "reason": p["reason"], "updated_at": at})
            case "NoticeFired":
                yield Update("notices", {"notice_id": p["notice_id"]},
                             {"status": "fired", "message_id": p["message_id"], "updated_at": at})
            case "MessageCreated":
                yield Upsert("messages", {"message_id": p["message_id"]}, {
                    "account_id": p["account_id"], "session_id": p["session_id"],
                    "template": p["template"], "title": p["title"], "body": p["body"],
                    "created_at": p["created_at"], "read": False, "read_at": None})
            case "MessageRead":
                yield Update("messages", {"message_id": p["message_id"]},
                             {"read": True, "read_at": p["read_at"]})
            case "SmsQueued":
                yield Upsert("deliveries", {"message_id": p["message_id"]}, {
                    "account_id": p["account_id"], "session_id": p["session_id"],
                    "template": p["template"], "text": p["text"], "status": "queued",
                    "attempts": 0, "last_error": None, "next_attempt_at": p["queued_at"],
                    "queued_at": p["queued_at"], "updated_at": p["queued_at"], "sent_at": None,
                    "provider_id": None})
            case "SmsSent":
                yield Update("deliveries", {"message_id": p["message_id"]}, {
                    "status": "sent", "attempts": p["attempt"], "next_attempt_at": None,
                    "sent_at": p["sent_at"], "provider_id": p["provider_id"],
                    "updated_at": p["sent_at"]})
            case "SmsAttemptFailed":
                yield Update("deliveries", {"message_id": p["message_id"]}, {
                    "attempts": p["attempt"], "last_error": p["error"],
                    "next_attempt_at": p["retry_at"], "updated_at": at})
            case "SmsFailed":
                yield Update("deliveries", {"message_id": p["message_id"]}, {
                    "status": "failed", "attempts": p["attempt"], "last_error": p["error"],
                    "next_attempt_at": None, "updated_at": at})
