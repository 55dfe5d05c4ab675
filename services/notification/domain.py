"""Notifications (通知), decided. Pure: no I/O, no clock reads (``now`` is passed in).

Three aggregates, each a stream of this service's own log:

- a **message** (``message-<id>``): one in-site message (站内信) to one candidate, and
  (``sms-<id>``) its SMS delivery: queued → sent | failed, with attempts and the last
  error. Its id is a hash of (upstream, upstream event id, candidate, template), so the
  same event told twice gives the same id, and a second message with an id already used
  is refused (the stream must be empty);
- a **notice** (``notice-<kind>.<session>.<account>``): a message due at a time the
  timetable sets (核对确认 opens, 24 h before it closes, …): scheduled → fired | cancelled
  | expired. A TimetableAmended moves the due time of notices not yet fired;
- facts copied from upstream (the candidate's name and mobile, the session document,
  admission tickets), so that deciding never has to ask another service.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.notification.delivery import RetryPolicy, SendResult
from services.notification.templates import Catalogue, NoticeRule
from shared.errors import NotFound
from shared.events import NewEvent
from shared.evolve import Evolve, Step
from shared.logging import mask_text
from shared.session import SessionDocument

DEFAULT_NAME = "考生"  # until the account's name is known (an event overtook AccountRegistered)
SMS_STATUSES = ("queued", "sent", "failed")
NOTICE_STATUSES = ("scheduled", "fired", "cancelled", "expired")
TICKET_STATUSES = ("issued", "printed", "forfeited", "cancelled")
MAX_ERROR = 500


# --- ids and streams ------------------------------------------------------------------

def message_id(upstream: str, event_key: str, account_id: str, template: str) -> str:
    """Deterministic: the same (upstream, event, candidate, template) is the same message."""
    raw = "\x1f".join((upstream, event_key, account_id, template))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def event_key(event) -> str:
    """An upstream event's identity: its event id, or else its position in the upstream log."""
    return (event.metadata or {}).get("event_id") or f"position:{event.position}"


def notice_id(kind: str, session_id: str, account_id: str) -> str:
    return f"{kind}.{session_id}.{account_id}"


def recipient_stream(account_id: str) -> str:
    return f"recipient-{account_id}"


def session_stream(session_id: str) -> str:
    return f"session-{session_id}"


def ticket_stream(application_id: str) -> str:
    """An admission ticket, by its application (logs written before used the ticket
    number, which two sessions could share; the read model is keyed by application)."""
    return f"ticket-{application_id}"


def notice_stream(nid: str) -> str:
    return f"notice-{nid}"


def message_stream(mid: str) -> str:
    return f"message-{mid}"


def sms_stream(mid: str) -> str:
    return f"sms-{mid}"


def stamp(dt: datetime) -> str:
    """A fixed-width UTC timestamp: read models compare these as strings."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"an aware datetime is needed, not {dt!r}")
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def parse_stamp(s: str) -> datetime:
    return datetime.fromisoformat(s)


def _require_aware(now: datetime):
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


# --- rendering context ----------------------------------------------------------------

def context(doc: SessionDocument | None, name: str | None, session_id: str | None = None,
            **extra) -> dict:
    """What every template may use: the candidate, the exam, the windows' times."""
    out = {"name": name or DEFAULT_NAME,
           "exam": doc.name if doc is not None else (session_id or "考试")}
    if doc is not None:
        c, p = doc.window("confirmation"), doc.window("ticket_printing")
        out.update(confirmation_start=c.start, confirmation_end=c.end,
                   printing_start=p.start, printing_end=p.end)
    out.update(extra)
    return out


def _deadline(doc: SessionDocument | None, window: str):
    return doc.window(window).end if doc is not None else "规定时间"


def _proof_requested(p, doc, proof_causes):
    if p["cause"] in ("spot_check_rejected", "enquiry_reopened"):
        return None
    return "proof_requested", {
        "reason": p["reason"], "cause": (proof_causes or {}).get(p["cause"], p["cause"]),
        "deadline": _deadline(doc, "verification")}


def _manual_check_rejected(p, doc, proof_causes):
    key = "manual_check_rejected_final" if p["final"] else "manual_check_rejected"
    return key, {"reason": p["reason"]}


def _spot_check_rejected(p, doc, proof_causes):
    # proof after a spot-check rejection is due until confirmation closes
    return "spot_check_rejected", {"reason": p["reason"],
                                   "deadline": _deadline(doc, "confirmation")}


def _enquiry_answered(p, doc, proof_causes):
    if p["reopened"]:
        return "enquiry_answered_reopened", {
            "answer": p["answer"], "point": p["registration_point"],
            "deadline": _deadline(doc, "confirmation")}
    return "enquiry_answered", {"answer": p["answer"], "point": p["registration_point"]}


def _certificate_issued(p, doc, proof_causes):
    level = doc.levels.get(p["level"]) if doc is not None else None
    return "certificate_issued", {"certificate_number": p["certificate_number"],
                                  "level_name": level.name if level else p["level"]}


# upstream outcome about one candidate -> (payload, session document, proof causes) ->
# (template, context beyond name and exam) or None
OUTCOMES = {
    "ProofRequested": _proof_requested,
    "ManualCheckPassed": lambda p, doc, causes: ("manual_check_passed", {}),
    "ManualCheckRejected": _manual_check_rejected,
    "SpotCheckPassed": lambda p, doc, causes: ("spot_check_passed", {}),
    "SpotCheckRejected": _spot_check_rejected,
    "EnquiryAnswered": _enquiry_answered,
    "RegistrationVoided": lambda p, doc, causes: ("registration_voided", {"reason": p["reason"]}),
    "ScoresVoided": lambda p, doc, causes: ("scores_voided", {"reason": p["reason"]}),
    "CertificateIssued": _certificate_issued,
    "CertificateRevoked": lambda p, doc, causes: ("certificate_revoked", {
        "certificate_number": p["certificate_number"], "reason": p["reason"]}),
}
# verification's outcomes a candidate hears of
VERIFICATION_OUTCOMES = ("ProofRequested", "ManualCheckPassed", "ManualCheckRejected",
                         "SpotCheckPassed", "SpotCheckRejected", "EnquiryAnswered")


def outcome_message(event_type: str, p: dict, doc: SessionDocument | None,
                    proof_causes: dict[str, str] | None = None) -> tuple[str, dict] | None:
    """The message an upstream outcome about one candidate calls for (``OUTCOMES``):
    (template, context beyond name and exam), or None when it calls for none.
    ``proof_causes``: the candidate's words for why proof is asked
    (``Catalogue.proof_causes``).

    ProofRequested after a spot-check rejection or a reopened enquiry says nothing of its
    own: the SpotCheckRejected / EnquiryAnswered message already asks for the proof (one
    message per thing the candidate must do).
    """
    outcome = OUTCOMES.get(event_type)
    return None if outcome is None else outcome(p, doc, proof_causes)


# --- messages -------------------------------------------------------------------------

def compose(mid: str, account_id: str, session_id: str | None, template: str, rendered,
            source: dict, now: datetime) -> list[NewEvent]:
    """One message: the in-site copy (站内信) and its SMS, queued to go at once."""
    _require_aware(now)
    at = stamp(now)
    return [
        NewEvent(message_stream(mid), "MessageCreated", {
            "message_id": mid, "account_id": account_id, "session_id": session_id,
            "template": template, "title": rendered.title, "body": rendered.body,
            "source": source, "created_at": at}),
        NewEvent(sms_stream(mid), "SmsQueued", {
            "message_id": mid, "account_id": account_id, "session_id": session_id,
            "template": template, "text": rendered.sms, "queued_at": at}),
    ]


@dataclass
class Message:
    message_id: str
    account_id: str
    session_id: str | None = None
    template: str = ""
    title: str = ""
    body: str = ""
    created_at: str = ""
    read: bool = False
    read_at: str | None = None
    version: int = 0


def _message_created(event) -> Message:
    p = event.payload
    return Message(p["message_id"], p["account_id"], p["session_id"], p["template"],
                   p["title"], p["body"], p["created_at"])


# a Message's evolve (no status chart; reading twice is not recorded)
MESSAGE = Evolve("message", {
    "MessageCreated": Step.opening(_message_created),
    "MessageRead": Step(sets=lambda ev: {"read": True, "read_at": ev.payload["read_at"]}),
}, ident=lambda msg: msg.message_id)


def fold_message(events) -> Message | None:
    return MESSAGE.fold(events)


def mark_read(msg: Message | None, account_id: str, mid: str, now: datetime) -> list[NewEvent]:
    """已读. Someone else's message is as good as absent; reading twice changes nothing."""
    _require_aware(now)
    if msg is None or msg.account_id != account_id:
        raise NotFound("You have no message with this id.", {"message_id": mid})
    if msg.read:
        return []
    return [NewEvent(message_stream(mid), "MessageRead",
                     {"message_id": mid, "account_id": account_id, "read_at": stamp(now)})]


# --- SMS delivery ---------------------------------------------------------------------

@dataclass
class Delivery:
    message_id: str
    account_id: str
    text: str
    session_id: str | None = None
    template: str = ""
    queued_at: str = ""
    status: str = "queued"
    attempts: int = 0
    next_attempt_at: str | None = None
    last_error: str | None = None
    sent_at: str | None = None
    provider_id: str | None = None
    version: int = 0


def _sms_queued(event) -> Delivery:
    p = event.payload
    return Delivery(p["message_id"], p["account_id"], p["text"], p["session_id"], p["template"],
                    p["queued_at"], next_attempt_at=p["queued_at"])


# an SMS delivery's evolve: queued until sent or failed for good
DELIVERY = Evolve("delivery", {
    "SmsQueued": Step.opening(_sms_queued),
    "SmsSent": Step(("queued",), lambda ev: {
        "status": "sent", "attempts": ev.payload["attempt"], "next_attempt_at": None,
        "sent_at": ev.payload["sent_at"], "provider_id": ev.payload["provider_id"]}),
    "SmsAttemptFailed": Step(("queued",), lambda ev: {
        "attempts": ev.payload["attempt"], "last_error": ev.payload["error"],
        "next_attempt_at": ev.payload["retry_at"]}),
    "SmsFailed": Step(("queued",), lambda ev: {
        "status": "failed", "attempts": ev.payload["attempt"],
        "last_error": ev.payload["error"], "next_attempt_at": None}),
}, ident=lambda d: d.message_id)


def fold_delivery(events) -> Delivery | None:
    return DELIVERY.fold(events)


def record_attempt(d: Delivery | None, result: SendResult, now: datetime,
                   policy: RetryPolicy) -> list[NewEvent]:
    """The outcome of one attempt, recorded after the fact: sent; or failed and retried
    after the backoff; or failed for good (a permanent error, or the last attempt).
    A delivery already settled (another worker recorded it first) takes nothing more."""
    _require_aware(now)
    if d is None or d.status != "queued":
        return []
    attempt = d.attempts + 1
    stream, mid = sms_stream(d.message_id), d.message_id
    if result.ok:
        return [NewEvent(stream, "SmsSent", {"message_id": mid, "attempt": attempt,
                                             "provider_id": result.provider_id,
                                             "sent_at": stamp(now)})]
    error = mask_text(result.error or "unknown error")[:MAX_ERROR]
    if result.retryable and attempt < policy.max_attempts:
        return [NewEvent(stream, "SmsAttemptFailed", {
            "message_id": mid, "attempt": attempt, "error": error,
            "retry_at": stamp(now + policy.delay(attempt))})]
    return [NewEvent(stream, "SmsFailed", {"message_id": mid, "attempt": attempt, "error": error,
                                           "permanent": not result.retryable})]


# --- notices (scheduled from the timetable) -------------------------------------------

@dataclass
class Notice:
    notice_id: str
    kind: str
    account_id: str
    session_id: str
    status: str = "scheduled"
    due_at: str | None = None
    context: dict = field(default_factory=dict)
    cause: dict = field(default_factory=dict)  # {upstream, position, event_id} of the scheduling
    template: str = ""
    application_id: str | None = None
    window: str = ""
    message_id: str | None = None  # once fired
    reason: str | None = None  # why it was last moved, cancelled or expired
    version: int = 0


def _notice_scheduled(event) -> Notice:
    p = event.payload
    return Notice(p["notice_id"], p["kind"], p["account_id"], p["session_id"],
                  due_at=p["due_at"], context=dict(p["context"]), cause=dict(p["cause"]),
                  template=p["template"], application_id=p["application_id"], window=p["window"])


# a Notice's evolve: scheduled until fired, cancelled or expired; a cancelled or expired one
# may be scheduled again (for a later upstream event)
NOTICE = Evolve("notice", {
    "NoticeScheduled": Step.opening(_notice_scheduled, again=("cancelled", "expired")),
    "NoticeRescheduled": Step(("scheduled",), lambda ev: {
        "due_at": ev.payload["due_at"], "reason": ev.payload["reason"]}),
    "NoticeCancelled": Step(("scheduled",), lambda ev: {
        "status": "cancelled", "reason": ev.payload["reason"]}),
    "NoticeExpired": Step(("scheduled",), lambda ev: {
        "status": "expired", "reason": ev.payload["reason"]}),
    "NoticeFired": Step(("scheduled",), lambda ev: {
        "status": "fired", "message_id": ev.payload["message_id"]}),
}, ident=lambda n: n.notice_id)


def fold_notice(events) -> Notice | None:
    return NOTICE.fold(events)


def due_at(rule: NoticeRule, doc: SessionDocument) -> datetime | None:
    """When a notice is due: ``before`` ahead of its window's start or end (the end as the
    timetable states it, 16:00 for a window ending 16:00:00). None for a reminder that
    would come before its window even opens: the opening notice already says when it
    closes."""
    w = doc.window(rule.window)
    if rule.at == "start":
        return w.start - rule.before
    t = w.end - rule.before
    return t if t > w.start else None


def schedule_notice(notice: Notice | None, rule: NoticeRule, doc: SessionDocument | None, *,
                    account_id: str, session_id: str, application_id: str | None, extra: dict,
                    cause: dict, now: datetime) -> list[NewEvent]:
    """Plan a notice for a candidate who now qualifies (eligible to confirm, a ticket to print).

    Nothing is planned when one is planned or told already; when the window has closed;
    or for a reminder whose time passed before the candidate qualified (the opening
    notice, due at once, says when the window closes). A notice cancelled earlier is
    planned again only for a later upstream event than the one that planned it, so
    replaying an upstream log never revives a cancelled reminder. Without the session
    document yet, the notice waits for it with no due time.
    """
    _require_aware(now)
    if notice is not None:
        if notice.status in ("scheduled", "fired"):
            return []
        if notice.cause.get("upstream") == cause["upstream"] and \
                cause["position"] <= notice.cause.get("position", 0):
            return []  # the event that planned it (or an older one), seen again
    due = None
    if doc is not None:
        if now >= doc.window(rule.window).end_exclusive:
            return []
        due = due_at(rule, doc)
        if due is None or (rule.at == "end" and due <= now):
            return []
    nid = notice_id(rule.kind, session_id, account_id)
    return [NewEvent(notice_stream(nid), "NoticeScheduled", {
        "notice_id": nid, "kind": rule.kind, "template": rule.template, "account_id": account_id,
        "session_id": session_id, "application_id": application_id, "window": rule.window,
        "due_at": stamp(due) if due else None, "context": dict(extra), "cause": dict(cause)})]


def reschedule_notice(notice: Notice | None, rule: NoticeRule, doc: SessionDocument,
                      reason: str) -> list[NewEvent]:
    """The session changed (scheduled late, or amended): move a notice not yet fired."""
    if notice is None or notice.status != "scheduled":
        return []
    stream = notice_stream(notice.notice_id)
    due = due_at(rule, doc)
    if due is None:
        return [NewEvent(stream, "NoticeCancelled", {
            "notice_id": notice.notice_id,
            "reason": f"{reason}: the {rule.window} window leaves no time for it"})]
    if notice.due_at == stamp(due):
        return []
    return [NewEvent(stream, "NoticeRescheduled", {"notice_id": notice.notice_id,
                                                   "due_at": stamp(due), "reason": reason})]


def cancel_notice(notice: Notice | None, reason: str) -> list[NewEvent]:
    """No longer needed (confirmed, printed, lapsed, voided …): only if not fired yet."""
    if notice is None or notice.status != "scheduled":
        return []
    return [NewEvent(notice_stream(notice.notice_id), "NoticeCancelled",
                     {"notice_id": notice.notice_id, "reason": reason})]


def fire_notice(notice: Notice | None, rule: NoticeRule, doc: SessionDocument | None,
                name: str | None, now: datetime, catalogue: Catalogue,
                message_exists: bool = False) -> list[NewEvent]:
    """The timer found the notice due. Fired once: the message (id from the notice) and
    NoticeFired in one append. A window that closed meanwhile (the service was down across
    it) expires the notice instead: a stale reminder helps nobody."""
    _require_aware(now)
    if notice is None or notice.status != "scheduled" or notice.due_at is None or doc is None:
        return []
    if now < parse_stamp(notice.due_at):
        return []
    stream = notice_stream(notice.notice_id)
    if now >= doc.window(rule.window).end_exclusive:
        return [NewEvent(stream, "NoticeExpired", {
            "notice_id": notice.notice_id,
            "reason": f"the {rule.window} window closed before the notice went out"})]
    mid = message_id("notification", notice.notice_id, notice.account_id, rule.template)
    events = [NewEvent(stream, "NoticeFired", {"notice_id": notice.notice_id, "message_id": mid,
                                               "fired_at": stamp(now)})]
    if not message_exists:
        rendered = catalogue.render(rule.template, context(doc, name, **notice.context))
        events += compose(mid, notice.account_id, notice.session_id, rule.template, rendered,
                          {"upstream": "notification", "key": notice.notice_id}, now)
    return events
