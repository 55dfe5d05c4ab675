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
  ticket of the session (not cancelled, not forfeited); ScoresVoided (成绩无效) →
  ``scores_voided`` to that candidate, with the reason (a candidate without a certificate
  hears of it from no one else).
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
from shared.events import NewEvent
from shared.logging import get_logger
from shared.session import SessionDocument
from shared.tracking import dispatch

log = get_logger(__name__)

CONFIRMATION_NOTICES = ("confirmation_open", "confirmation_reminder")
PRINTING_NOTICES = ("printing_open", "printing_reminder")
ALL_NOTICES = CONFIRMATION_NOTICES + PRINTING_NOTICES
SCORE_RECIPIENT_TICKETS = ("issued", "printed")


def make_prepare(config, providers):
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

    def ticket(self, application_id: str):
        """The application's admission ticket as recorded here (keyed by the application:
        two sessions never share one, as they could share a ticket number)."""
        return self.tx.conn.execute(select(tickets).where(
            tickets.c.application_id == application_id)).first()

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
        row = self.ticket(p["application_id"])
        position = self.event.position if position is None else position
        if row is not None and (row.upstream_position > position or row.status == status):
            return
        self.append([NewEvent(domain.ticket_stream(p["application_id"]), "TicketRecorded", {
            "ticket_number": p["ticket_number"], "account_id": p["account_id"],
            "session_id": p["session_id"], "application_id": p["application_id"],
            "status": status, "upstream_position": position})], {})


# --- the handlers, one per upstream ---------------------------------------------------

def _password_reset_code(tx, event, prepared):
    p = event.payload
    Step(tx, "account", event, prepared["now"]).tell(
        p["account_id"], None, "password_reset_code",
        {"code": reset_codes.placeholder(p["reset_id"]),
         "expires": datetime.fromisoformat(p["expires_at"])}, None)


def _account_registered(tx, event, prepared):
    p = event.payload
    step = Step(tx, "account", event, prepared["now"])
    stream = domain.recipient_stream(p["account_id"])
    if tx.stream_version(stream):
        return  # seen before (a replay): the recipient and the message exist
    step.append([NewEvent(stream, "RecipientRecorded", {
        "account_id": p["account_id"], "name": p["name"], "mobile": p["mobile"],
        "registered_at": p["registered_at"]})], {stream: 0})
    step.tell(p["account_id"], None, "account_registered", {}, None)


on_account = dispatch({"AccountRegistered": _account_registered,
                       "PasswordResetCodeIssued": _password_reset_code}, prepared=True)


def _session_event(tx, event, prepared):
    p, t = event.payload, event.type
    step = Step(tx, "registration", event, prepared["now"])
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


def _application_confirmed(tx, event, prepared):
    p = event.payload
    Step(tx, "registration", event, prepared["now"]).cancel(
        CONFIRMATION_NOTICES, p["session_id"], p["account_id"],
        "the application is confirmed (核对确认)")


def _application_ended(tx, event, prepared):
    p = event.payload
    Step(tx, "registration", event, prepared["now"]).cancel(
        ALL_NOTICES, p["session_id"], p["account_id"], f"{event.type}: {p['reason']}")


def _registration_voided(tx, event, prepared):
    p, t = event.payload, event.type
    step = Step(tx, "registration", event, prepared["now"])
    doc = step.session(p["session_id"])
    template, extra = domain.outcome_message(t, p, doc)
    step.tell(p["account_id"], p["session_id"], template, extra, doc)
    step.cancel(ALL_NOTICES, p["session_id"], p["account_id"], f"报名无效: {p['reason']}")
    for row in tx.conn.execute(select(tickets).where(
            tickets.c.account_id == p["account_id"],
            tickets.c.session_id == p["session_id"])).all():
        step.record_ticket(row._asdict(), "cancelled", position=row.upstream_position)


on_registration = dispatch({
    "ExamSessionScheduled": _session_event, "TimetableAmended": _session_event,
    "ApplicationConfirmed": _application_confirmed,
    "ApplicationLapsed": _application_ended, "RegistrationTerminated": _application_ended,
    "RegistrationVoided": _registration_voided,
}, prepared=True)


def _eligibility_confirmed(tx, event, prepared):
    p = event.payload
    step = Step(tx, "verification", event, prepared["now"])
    step.schedule(CONFIRMATION_NOTICES, step.session(p["session_id"]), p["account_id"],
                  p["session_id"], p["application_id"])


def _verification_outcome(tx, event, prepared):
    p, t = event.payload, event.type
    step = Step(tx, "verification", event, prepared["now"])
    doc = step.session(p["session_id"])
    if t == "EnquiryAnswered" and p["reopened"]:
        step.cancel(CONFIRMATION_NOTICES, p["session_id"], p["account_id"],
                    "the enquiry reopened the verification")
    message = domain.outcome_message(t, p, doc, step.catalogue.proof_causes)
    if message is not None:
        step.tell(p["account_id"], p["session_id"], message[0], message[1], doc)


on_verification = dispatch({
    **dict.fromkeys(domain.VERIFICATION_OUTCOMES, _verification_outcome),
    "EligibilityConfirmed": _eligibility_confirmed,
}, prepared=True)


def _ticket_issued(tx, event, prepared):
    p = event.payload
    step = Step(tx, "admission", event, prepared["now"])
    if step.ticket(p["application_id"]) is not None:
        return  # seen before
    step.record_ticket(p, "issued")
    step.schedule(PRINTING_NOTICES, step.session(p["session_id"]), p["account_id"],
                  p["session_id"], p["application_id"], {"ticket_number": p["ticket_number"]})


def _ticket_printed(tx, event, prepared):
    p = event.payload
    step = Step(tx, "admission", event, prepared["now"])
    step.record_ticket(p, "printed")
    step.cancel(PRINTING_NOTICES, p["session_id"], p["account_id"], "the ticket was printed")


def _ticket_ended(tx, event, prepared):
    p, t = event.payload, event.type
    step = Step(tx, "admission", event, prepared["now"])
    step.record_ticket(p, "forfeited" if t == "ExamForfeited" else "cancelled")
    step.cancel(PRINTING_NOTICES, p["session_id"], p["account_id"], f"{t}: {p['reason']}")


on_admission = dispatch({
    "AdmissionTicketIssued": _ticket_issued, "AdmissionTicketPrinted": _ticket_printed,
    "ExamForfeited": _ticket_ended, "AdmissionTicketCancelled": _ticket_ended,
}, prepared=True)


def _tell(source: str):
    """A step that tells the candidate the event names what ``domain.outcome_message`` says."""
    def step(tx, event, prepared):
        p = event.payload
        at = Step(tx, source, event, prepared["now"])
        session_id = p.get("session_id")
        doc = at.session(session_id)
        template, extra = domain.outcome_message(event.type, p, doc)
        at.tell(p["account_id"], session_id, template, extra, doc)
    return step


def _scores_published(tx, event, prepared):
    p = event.payload
    step = Step(tx, "scoring", event, prepared["now"])
    doc = step.session(p["session_id"])
    holders = tx.conn.execute(select(tickets.c.account_id).where(
        tickets.c.session_id == p["session_id"],
        tickets.c.status.in_(SCORE_RECIPIENT_TICKETS)).distinct()).scalars().all()
    for account_id in sorted(holders):
        step.tell(account_id, p["session_id"], "scores_published", {}, doc)


on_scoring = dispatch({"ScoresPublished": _scores_published, "ScoresVoided": _tell("scoring")},
                      prepared=True)
on_certificate = dispatch(dict.fromkeys(("CertificateIssued", "CertificateRevoked"),
                                        _tell("certificate")), prepared=True)


HANDLERS = {"account": on_account, "registration": on_registration,
            "verification": on_verification, "admission": on_admission,
            "scoring": on_scoring, "certificate": on_certificate}
