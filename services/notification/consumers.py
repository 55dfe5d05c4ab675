"""Consuming the upstream services' integration events: one tracking consumer each.

A handler runs inside its consumer's transaction (``shared.tracking``): it reads what a
decision needs from this service's read model through ``tx.conn`` (the candidate's name,
the session document, tickets, notices), lets ``domain`` decide, and appends. It does no
I/O of its own; ``prepared["now"]`` is the clock's time, read before the transaction.

Idempotent twice over: the consumer skips an upstream position it has applied, and a
handler that sees an event again anyway (an operator replays a consumer) changes
nothing: message ids are deterministic and a message stream must be empty; facts copied
from upstream carry the upstream position they reflect; a notice is planned again only
for a later upstream event than the one that planned it.

Which events say what to whom:

- account: AccountRegistered → the recipient (name, mobile) and ``account_registered``;
  PasswordResetCodeIssued → ``password_reset_code``, whose SMS text is stored with a
  placeholder for the code (``shared.reset_codes``), filled in only as it is sent.
  (The account contract has no event for a changed mobile yet; SMS are addressed to the
  recipient's current number when they are sent, so such an event needs only a handler.)
- registration: ExamSessionScheduled / TimetableAmended → the session document, and the
  due times of notices not yet sent move with it; ApplicationConfirmed cancels the
  confirmation notices; ApplicationLapsed / RegistrationTerminated cancel all of that
  application's notices; RegistrationVoided tells ``registration_voided`` and cancels
  notices and tickets.
- verification: ProofRequested, ManualCheckPassed/Rejected, SpotCheckPassed/Rejected,
  EnquiryAnswered → a message each (``domain.outcome_message``); EligibilityConfirmed →
  the confirmation notices (opening, reminder before it closes).
- admission: AdmissionTicketIssued → the ticket, and the printing notices (opening,
  reminder); AdmissionTicketPrinted cancels the printing reminder (who printed is not
  reminded); ExamForfeited / AdmissionTicketCancelled cancel the printing notices.
- scoring: ScoresPublished (per session) → ``scores_published`` to every candidate with a
  ticket of the session (not cancelled, not forfeited).
- certificate: CertificateIssued / CertificateRevoked → a message each.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from services.notification import domain
from services.notification.projection import notices, recipients, sessions, tickets
from services.notification.templates import load_catalogue
from shared import reset_codes
from shared.clock import clock_from_config
from shared.contracts import INTEGRATION
from shared.events import NewEvent
from shared.logging import get_logger
from shared.session import SessionDocument
from shared.tracking import handles

log = get_logger(__name__)

CONFIRMATION_NOTICES = ("confirmation_open", "confirmation_reminder")
PRINTING_NOTICES = ("printing_open", "printing_reminder")
ALL_NOTICES = CONFIRMATION_NOTICES + PRINTING_NOTICES
SCORE_RECIPIENT_TICKETS = ("issued", "printed")


def make_prepare(config):
    clock = clock_from_config(config)

    def prepare(event):
        return {"now": clock.now()}

    return prepare


class Step:
    """One upstream event being applied: the transaction, the event and helpers."""

    def __init__(self, tx, upstream: str, event, now):
        self.tx, self.upstream, self.event, self.now = tx, upstream, event, now
        self.catalogue = load_catalogue()

    # -- reading the read model (this transaction's view) --------------------------------

    def name(self, account_id: str) -> str | None:
        return self.tx.conn.execute(select(recipients.c.name).where(
            recipients.c.account_id == account_id)).scalar()

    def session_row(self, session_id: str | None):
        if not session_id:
            return None
        return self.tx.conn.execute(select(sessions).where(
            sessions.c.session_id == session_id)).first()

    def session(self, session_id: str | None) -> SessionDocument | None:
        row = self.session_row(session_id)
        return SessionDocument.from_dict(row.document) if row is not None else None

    def notice(self, kind: str, session_id: str, account_id: str) -> domain.Notice | None:
        nid = domain.notice_id(kind, session_id, account_id)
        return domain.fold_notice(self.tx.read_stream(domain.notice_stream(nid)))

    # -- deciding and appending ---------------------------------------------------------

    def append(self, events: list[NewEvent], expected: dict):
        if events:
            self.tx.append(events, expected)

    def tell(self, account_id: str, session_id: str | None, template: str, extra: dict,
             doc: SessionDocument | None):
        """One message (in-site and SMS) about this event to this candidate, once."""
        key = domain.event_key(self.event)
        mid = domain.message_id(self.upstream, key, account_id, template)
        if self.tx.stream_version(domain.message_stream(mid)):
            log.info("message.duplicate", message_id=mid, template=template,
                     upstream=self.upstream, position=self.event.position)
            return
        rendered = self.catalogue.render(
            template, domain.context(doc, self.name(account_id), session_id, **extra))
        self.append(domain.compose(mid, account_id, session_id, template, rendered,
                                   {"upstream": self.upstream, "key": key}, self.now),
                    {domain.message_stream(mid): 0, domain.sms_stream(mid): 0})

    def schedule(self, kinds, doc, account_id: str, session_id: str,
                 application_id: str | None, extra: dict | None = None):
        cause = {"upstream": self.upstream, "position": self.event.position,
                 "event_id": self.event.metadata.get("event_id")}
        for kind in kinds:
            notice = self.notice(kind, session_id, account_id)
            events = domain.schedule_notice(
                notice, self.catalogue.notices[kind], doc, account_id=account_id,
                session_id=session_id, application_id=application_id, extra=extra or {},
                cause=cause, now=self.now)
            self.append(events, {events[0].stream_id: notice.version if notice else 0}
                        if events else {})

    def cancel(self, kinds, session_id: str, account_id: str, reason: str):
        for kind in kinds:
            notice = self.notice(kind, session_id, account_id)
            events = domain.cancel_notice(notice, reason)
            self.append(events, {events[0].stream_id: notice.version} if events else {})

    def record_session(self, doc: SessionDocument, reason: str):
        """The session as it now stands, and the notices not yet sent moved with it."""
        self.append([NewEvent(domain.session_stream(doc.session_id), "SessionRecorded", {
            "session_id": doc.session_id, "document": doc.to_dict(),
            "upstream_position": self.event.position})], {})
        ids = self.tx.conn.execute(select(notices.c.notice_id).where(
            notices.c.session_id == doc.session_id, notices.c.status == "scheduled")).scalars().all()
        for nid in ids:
            notice = domain.fold_notice(self.tx.read_stream(domain.notice_stream(nid)))
            events = domain.reschedule_notice(notice, self.catalogue.notices[notice.kind], doc,
                                              reason)
            self.append(events, {events[0].stream_id: notice.version} if events else {})

    def record_ticket(self, p: dict, status: str, *, position: int | None = None):
        """The ticket's status, if this event is newer than what the row reflects."""
        row = self.tx.conn.execute(select(tickets).where(
            tickets.c.ticket_number == p["ticket_number"])).first()
        position = self.event.position if position is None else position
        if row is not None and (row.upstream_position > position or row.status == status):
            return
        self.append([NewEvent(domain.ticket_stream(p["ticket_number"]), "TicketRecorded", {
            "ticket_number": p["ticket_number"], "account_id": p["account_id"],
            "session_id": p["session_id"], "application_id": p["application_id"],
            "status": status, "upstream_position": position})], {})


# --- the handlers, one per upstream ---------------------------------------------------

#: event types whose payload names a candidate's application in a session (account_id and
#: session_id): the only ones verification's handler may tell anyone about
_ABOUT_AN_APPLICATION = tuple(
    name for name in INTEGRATION.names()
    if {"account_id", "session_id"} <= set(INTEGRATION.get(name).schema.fields))


@handles("AccountRegistered", "PasswordResetCodeIssued")
def on_account(tx, event, prepared):
    p = event.payload
    if event.type == "PasswordResetCodeIssued":
        step = Step(tx, "account", event, prepared["now"])
        step.tell(p["account_id"], None, "password_reset_code",
                  {"code": reset_codes.placeholder(p["reset_id"]),
                   "expires": datetime.fromisoformat(p["expires_at"])}, None)
        return
    if event.type != "AccountRegistered":
        return
    step = Step(tx, "account", event, prepared["now"])
    stream = domain.recipient_stream(p["account_id"])
    if tx.stream_version(stream):
        return  # seen before (a replay): the recipient and the message exist
    step.append([NewEvent(stream, "RecipientRecorded", {
        "account_id": p["account_id"], "name": p["name"], "mobile": p["mobile"],
        "registered_at": p["registered_at"]})], {stream: 0})
    step.tell(p["account_id"], None, "account_registered", {}, None)


@handles("ExamSessionScheduled", "TimetableAmended", "ApplicationConfirmed", "ApplicationLapsed",
         "RegistrationTerminated", "RegistrationVoided")
def on_registration(tx, event, prepared):
    p, t = event.payload, event.type
    step = Step(tx, "registration", event, prepared["now"])
    if t in ("ExamSessionScheduled", "TimetableAmended"):
        row = step.session_row(p["session_id"])
        if row is not None and row.upstream_position >= event.position:
            return  # this or a later state of the session is recorded already
        if t == "ExamSessionScheduled":
            step.record_session(SessionDocument.from_dict(p["document"]), "the session was scheduled")
        elif row is None:
            log.warning("notification.amendment_before_session", session_id=p["session_id"])
        else:
            doc = SessionDocument.from_dict(row.document).amended(
                p["window"], datetime.fromisoformat(p["start"]), datetime.fromisoformat(p["end"]))
            step.record_session(doc, f"the {p['window']} window was amended: {p['reason']}")
        return
    if t == "ApplicationConfirmed":
        step.cancel(CONFIRMATION_NOTICES, p["session_id"], p["account_id"],
                    "the application is confirmed (核对确认)")
    elif t in ("ApplicationLapsed", "RegistrationTerminated"):
        step.cancel(ALL_NOTICES, p["session_id"], p["account_id"], f"{t}: {p['reason']}")
    elif t == "RegistrationVoided":
        doc = step.session(p["session_id"])
        template, extra = domain.outcome_message(t, p, doc)
        step.tell(p["account_id"], p["session_id"], template, extra, doc)
        step.cancel(ALL_NOTICES, p["session_id"], p["account_id"], f"报名无效: {p['reason']}")
        for row in tx.conn.execute(select(tickets).where(
                tickets.c.account_id == p["account_id"],
                tickets.c.session_id == p["session_id"])).all():
            step.record_ticket(row._asdict(), "cancelled", position=row.upstream_position)


@handles(*_ABOUT_AN_APPLICATION)
def on_verification(tx, event, prepared):
    p, t = event.payload, event.type
    if "account_id" not in p or "session_id" not in p:
        return  # IntegrityRecordWritten and private events: nothing to tell
    step = Step(tx, "verification", event, prepared["now"])
    doc = step.session(p["session_id"])
    if t == "EligibilityConfirmed":
        step.schedule(CONFIRMATION_NOTICES, doc, p["account_id"], p["session_id"],
                      p["application_id"])
        return
    if t == "EnquiryAnswered" and p["reopened"]:
        step.cancel(CONFIRMATION_NOTICES, p["session_id"], p["account_id"],
                    "the enquiry reopened the verification")
    message = domain.outcome_message(t, p, doc, step.catalogue.proof_causes)
    if message is not None:
        step.tell(p["account_id"], p["session_id"], message[0], message[1], doc)


@handles("AdmissionTicketIssued", "AdmissionTicketPrinted", "ExamForfeited",
         "AdmissionTicketCancelled")
def on_admission(tx, event, prepared):
    p, t = event.payload, event.type
    if "ticket_number" not in p:
        return
    step = Step(tx, "admission", event, prepared["now"])
    if t == "AdmissionTicketIssued":
        if tx.stream_version(domain.ticket_stream(p["ticket_number"])):
            return  # seen before
        step.record_ticket(p, "issued")
        step.schedule(PRINTING_NOTICES, step.session(p["session_id"]), p["account_id"],
                      p["session_id"], p["application_id"], {"ticket_number": p["ticket_number"]})
    elif t == "AdmissionTicketPrinted":
        step.record_ticket(p, "printed")
        step.cancel(PRINTING_NOTICES, p["session_id"], p["account_id"], "the ticket was printed")
    elif t in ("ExamForfeited", "AdmissionTicketCancelled"):
        step.record_ticket(p, "forfeited" if t == "ExamForfeited" else "cancelled")
        step.cancel(PRINTING_NOTICES, p["session_id"], p["account_id"], f"{t}: {p['reason']}")


@handles("ScoresPublished")
def on_scoring(tx, event, prepared):
    if event.type != "ScoresPublished":
        return
    p = event.payload
    step = Step(tx, "scoring", event, prepared["now"])
    doc = step.session(p["session_id"])
    holders = tx.conn.execute(select(tickets.c.account_id).where(
        tickets.c.session_id == p["session_id"],
        tickets.c.status.in_(SCORE_RECIPIENT_TICKETS)).distinct()).scalars().all()
    for account_id in sorted(holders):
        step.tell(account_id, p["session_id"], "scores_published", {}, doc)


@handles("CertificateIssued", "CertificateRevoked")
def on_certificate(tx, event, prepared):
    p, t = event.payload, event.type
    if t not in ("CertificateIssued", "CertificateRevoked"):
        return
    step = Step(tx, "certificate", event, prepared["now"])
    session_id = p.get("session_id")
    doc = step.session(session_id)
    template, extra = domain.outcome_message(t, p, doc)
    step.tell(p["account_id"], session_id, template, extra, doc)


HANDLERS = {"account": on_account, "registration": on_registration,
            "verification": on_verification, "admission": on_admission,
            "scoring": on_scoring, "certificate": on_certificate}
