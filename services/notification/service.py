"""The notification service's entrypoints (thin): it follows every upstream service's
events (``consumers``), tells candidates by SMS and in-site message (站内信), fires the
notices the timetable sets (``notices_due``), and sends queued SMS at a limited rate with
retries (``deliver``).

Sending happens outside any transaction: the worker reads due deliveries from the read
model, hands each to the gateway (``gateway.py``), then records the result. A crash in
between sends that SMS once more after the restart (at-least-once towards the provider;
the message id is its idempotency key).
"""

from dataclasses import dataclass

import eventlet
from nameko.extensions import DependencyProvider
from sqlalchemy import func, select

from services.notification import consumers, domain
from services.notification import projection as rm
from services.notification.delivery import RetryPolicy, SendResult, TokenBucket
from services.notification.gateway import SmsGateway, gateway_from_config, setting
from services.notification.projection import NotificationProjection
from services.notification.schemas import (
    REGISTRY,
    AccountRefSchema,
    CountsQuerySchema,
    DeliveriesQuerySchema,
    MarkReadSchema,
    NoticesQuerySchema,
)
from services.notification.templates import load_catalogue
from shared.clock import clock_from_config, shanghai
from shared.dependencies import EventStoreProvider, RpcProxy, StopSignal, TrackingProvider
from shared.dev_secrets import PASSWORD_RESET, secret
from shared.logging import get_logger
from shared.reset_codes import reveal
from shared.service import (
    EventSourcedService,
    command,
    config_timer,
    deadline_timer,
    load,
    upstream_events,
)
from shared.session import SessionDocument

log = get_logger(__name__)

UPSTREAMS = tuple(consumers.HANDLERS)


@dataclass
class Sender:
    """What sending needs: the gateway adapter (sink or HTTP, ``SMS_GATEWAY``), the retry
    policy (``SMS_MAX_ATTEMPTS``, ``SMS_RETRY_BASE_S``, ``SMS_RETRY_MAX_S``) and the rate
    limit (``SMS_RATE_PER_S``, ``SMS_BURST``); ``SMS_BATCH`` deliveries per tick at most."""

    gateway: SmsGateway
    policy: RetryPolicy
    bucket: TokenBucket
    batch: int = 200
    # PASSWORD_RESET_KEY (shared.dev_secrets): reset codes are derived under it; without one
    # a text naming a code is not sent
    reset_key: bytes | None = None

    @classmethod
    def from_config(cls, cfg) -> "Sender":
        burst = setting(cfg, "SMS_BURST")
        return cls(gateway_from_config(cfg, clock=clock_from_config(cfg)),
                   RetryPolicy.from_config(lambda key, default: setting(cfg, key, default)),
                   TokenBucket(float(setting(cfg, "SMS_RATE_PER_S", 10)),
                               float(burst) if burst is not None else None),
                   int(setting(cfg, "SMS_BATCH", 200)), secret(PASSWORD_RESET, cfg)[0])


class SmsSender(DependencyProvider):
    def setup(self):
        self.sender = Sender.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.sender


class NotificationService(EventSourcedService):
    name = "notification"
    store = EventStoreProvider(REGISTRY, projections=[NotificationProjection()])
    tracking = TrackingProvider({up: (consumers.make_prepare, handler)
                                 for up, handler in consumers.HANDLERS.items()})
    account_rpc = RpcProxy("account")
    registration_rpc = RpcProxy("registration")
    verification_rpc = RpcProxy("verification")
    admission_rpc = RpcProxy("admission")
    scoring_rpc = RpcProxy("scoring")
    certificate_rpc = RpcProxy("certificate")
    sms = SmsSender()
    stopping = StopSignal()

    # -- consumers -----------------------------------------------------------------------

    def _fetch(self, upstream):
        return getattr(self, f"{upstream}_rpc").events_after

    @upstream_events("account")
    def on_account(self, message):
        self.tracking.receive("account", message, self._fetch("account"))

    @upstream_events("registration")
    def on_registration(self, message):
        self.tracking.receive("registration", message, self._fetch("registration"))

    @upstream_events("verification")
    def on_verification(self, message):
        self.tracking.receive("verification", message, self._fetch("verification"))

    @upstream_events("admission")
    def on_admission(self, message):
        self.tracking.receive("admission", message, self._fetch("admission"))

    @upstream_events("scoring")
    def on_scoring(self, message):
        self.tracking.receive("scoring", message, self._fetch("scoring"))

    @upstream_events("certificate")
    def on_certificate(self, message):
        self.tracking.receive("certificate", message, self._fetch("certificate"))

    @config_timer()
    def catch_up(self):
        """Pull what a lost message would have said (upstream by upstream: one not
        answering does not hold up the others)."""
        self.tracking.catch_up({upstream: self._fetch(upstream) for upstream in UPSTREAMS})

    # -- timers: notices due, SMS due ---------------------------------------------------

    @deadline_timer()
    def notices_due(self):
        fire_due_notices(self.store, self.clock.now(), self.stopping)

    @config_timer(interval=1.0, key="DELIVERY_INTERVAL")
    def deliver(self):
        send_due(self.store, self.sms, self.clock, self.stopping)

    # -- candidates (站内信) -------------------------------------------------------------

    @command
    def messages(self, account_id, limit=100):
        """The candidate's in-site messages, newest first."""
        q = load(AccountRefSchema(), {"account_id": account_id, "limit": limit})
        with self.store.read_engine.connect() as c:
            rows = c.execute(select(rm.messages).where(rm.messages.c.account_id == q["account_id"])
                             .order_by(rm.messages.c.created_at.desc(), rm.messages.c.message_id.desc())
                             .limit(q["limit"])).all()
        return [_message(r) for r in rows]

    @command
    def mark_read(self, account_id, message_id):
        cmd = load(MarkReadSchema(), {"account_id": account_id, "message_id": message_id})
        stream = domain.message_stream(cmd["message_id"])
        now = self.clock.now()

        def decide(tx):
            msg = domain.fold_message(tx.read_stream(stream))
            events = domain.mark_read(msg, cmd["account_id"], cmd["message_id"], now)
            if events:
                tx.append(events, {stream: msg.version})

        self.store.execute(decide)
        with self.store.read_engine.connect() as c:
            return _message(c.execute(select(rm.messages).where(
                rm.messages.c.message_id == cmd["message_id"])).one())

    # -- operators -----------------------------------------------------------------------

    @command
    def deliveries(self, status=None, limit=100):
        """SMS deliveries, the most recently changed first (mobiles masked)."""
        q = load(DeliveriesQuerySchema(), {"status": status, "limit": limit})
        d, rcp = rm.deliveries, rm.recipients
        stmt = select(d, rcp.c.mobile).join_from(d, rcp, rcp.c.account_id == d.c.account_id,
                                                 isouter=True)
        if q["status"]:
            stmt = stmt.where(d.c.status == q["status"])
        with self.store.read_engine.connect() as c:
            rows = c.execute(stmt.order_by(d.c.updated_at.desc(), d.c.message_id)
                             .limit(q["limit"])).all()
        return [{"message_id": r.message_id, "account_id": r.account_id,
                 "session_id": r.session_id, "template": r.template, "status": r.status,
                 "attempts": r.attempts, "last_error": r.last_error,
                 "next_attempt_at": r.next_attempt_at, "queued_at": r.queued_at,
                 "sent_at": r.sent_at, "provider_id": r.provider_id,
                 "mobile": _masked(r.mobile)} for r in rows]

    @command
    def notices(self, session_id=None, account_id=None, status=None, limit=100):
        """Notices scheduled from the timetable, soonest first, with their due times."""
        q = load(NoticesQuerySchema(), {"session_id": session_id, "account_id": account_id,
                                        "status": status, "limit": limit})
        stmt = select(rm.notices)
        for col in ("session_id", "account_id", "status"):
            if q[col]:
                stmt = stmt.where(rm.notices.c[col] == q[col])
        with self.store.read_engine.connect() as c:
            rows = c.execute(stmt.order_by(rm.notices.c.due_at, rm.notices.c.notice_id)
                             .limit(q["limit"])).all()
        return [{"notice_id": r.notice_id, "kind": r.kind, "account_id": r.account_id,
                 "session_id": r.session_id, "window": r.window, "status": r.status,
                 "due_at": r.due_at,
                 "due_local": shanghai(domain.parse_stamp(r.due_at)) if r.due_at else None,
                 "message_id": r.message_id, "reason": r.reason} for r in rows]

    @command
    def notification_counts(self, session_id=None):
        """{queued, sent, failed, in_site}: SMS by status and in-site messages (for the
        dashboard; of one session if given)."""
        q = load(CountsQuerySchema(), {"session_id": session_id})
        sms_q = select(rm.deliveries.c.status, func.count()).group_by(rm.deliveries.c.status)
        in_site_q = select(func.count()).select_from(rm.messages)
        if q["session_id"]:
            sms_q = sms_q.where(rm.deliveries.c.session_id == q["session_id"])
            in_site_q = in_site_q.where(rm.messages.c.session_id == q["session_id"])
        with self.store.read_engine.connect() as c:
            sms = dict(c.execute(sms_q).all())
            in_site = c.execute(in_site_q).scalar()
        return {**{s: sms.get(s, 0) for s in domain.SMS_STATUSES}, "in_site": in_site}

    def business_counts(self):
        with self.store.read_engine.connect() as c:
            sms = dict(c.execute(select(rm.deliveries.c.status, func.count())
                                 .group_by(rm.deliveries.c.status)).all())
            read = dict(c.execute(select(rm.messages.c.read, func.count())
                                  .group_by(rm.messages.c.read)).all())
            planned = dict(c.execute(select(rm.notices.c.status, func.count())
                                     .group_by(rm.notices.c.status)).all())
        return {"sms": sms,
                "in_site_messages": {"read": read.get(True, 0), "unread": read.get(False, 0)},
                "notices": planned}


# -- the timers' work (plain functions: tests drive them without nameko) ------------------

def fire_due_notices(store, now, stopping=lambda: False) -> int:
    """Fire every notice whose due time the clock has passed, once each: firing is
    recorded (NoticeFired, with its message) in one append that expects the notice's
    version, so a second timer, replica or restart finds it fired. Returns how many.
    Stops early once ``stopping()`` (the service is stopping: the rest fire at the next
    start)."""
    n = rm.notices
    with store.read_engine.connect() as c:
        due = c.execute(select(n.c.notice_id).where(
            n.c.status == "scheduled", n.c.due_at.is_not(None),
            n.c.due_at <= domain.stamp(now)).order_by(n.c.due_at, n.c.notice_id)
            .limit(500)).scalars().all()
    return sum(bool(store.execute(lambda tx, nid=nid: _fire(tx, nid, now)))
               for nid in due if not stopping())


def _fire(tx, nid, now):
    stream = domain.notice_stream(nid)
    notice = domain.fold_notice(tx.read_stream(stream))
    if notice is None:
        return False
    catalogue = load_catalogue()
    rule = catalogue.notices[notice.kind]
    doc_json = tx.conn.execute(select(rm.sessions.c.document).where(
        rm.sessions.c.session_id == notice.session_id)).scalar()
    name = tx.conn.execute(select(rm.recipients.c.name).where(
        rm.recipients.c.account_id == notice.account_id)).scalar()
    doc = SessionDocument.from_dict(doc_json) if doc_json is not None else None
    mid = domain.message_id("notification", nid, notice.account_id, rule.template)
    exists = bool(tx.stream_version(domain.message_stream(mid)))
    events = domain.fire_notice(notice, rule, doc, name, now, catalogue, exists)
    if not events:
        return False
    expected = {stream: notice.version}
    if any(e.type == "MessageCreated" for e in events):
        expected |= {domain.message_stream(mid): 0, domain.sms_stream(mid): 0}
    tx.append(events, expected)
    log.info("notice.fired" if events[0].type == "NoticeFired" else "notice.expired",
             notice_id=nid, kind=notice.kind)
    return True


def send_due(store, sender, clock, stopping=lambda: False) -> int:
    """Send the SMS that are due (new, or their backoff over) at the rate allowed, each
    outside any transaction; then record its result in a transaction of its own.
    Returns how many attempts were made. Once ``stopping()`` no further SMS is begun (a
    batch waits on the rate limit for up to ``SMS_BATCH / SMS_RATE_PER_S`` seconds, 20 by
    default): those left stay queued for the next start."""
    now = clock.now()
    d, r = rm.deliveries, rm.recipients
    with store.read_engine.connect() as c:
        due = c.execute(
            select(d.c.message_id, d.c.account_id, d.c.text, r.c.mobile)
            .join_from(d, r, r.c.account_id == d.c.account_id, isouter=True)
            .where(d.c.status == "queued", d.c.next_attempt_at <= domain.stamp(now))
            .order_by(d.c.next_attempt_at, d.c.message_id).limit(sender.batch)).all()
    attempts = 0
    for row in due:
        if not _token(sender.bucket, stopping):
            break
        attempts += 1
        if row.mobile is None:
            result = SendResult.retry("no mobile number known for this account yet")
        else:
            # a password-reset code is in no stored text: it is derived as the SMS goes out
            result = sender.gateway.send(row.message_id, row.mobile,
                                         reveal(row.text, sender.reset_key))
        if result.ok:
            log.info("sms.sent", message_id=row.message_id, mobile=row.mobile,
                     gateway=sender.gateway.kind)
        else:
            log.warning("sms.attempt_failed", message_id=row.message_id, mobile=row.mobile,
                        retryable=result.retryable, error=result.error)
        store.execute(lambda tx, mid=row.message_id, result=result:
                      _record(tx, mid, result, clock.now(), sender.policy))
    return attempts


def _token(bucket, stopping) -> bool:
    """A token of the rate limit, waited for in short naps; False once ``stopping()``."""
    while not stopping():
        wait = bucket.try_take()
        if wait <= 0:
            return True
        eventlet.sleep(min(wait, 0.1))
    return False


def _record(tx, mid, result, now, policy):
    stream = domain.sms_stream(mid)
    delivery = domain.fold_delivery(tx.read_stream(stream))
    events = domain.record_attempt(delivery, result, now, policy)
    if events:
        tx.append(events, {stream: delivery.version})


def _masked(mobile: str | None) -> str | None:
    """A mobile for operators' eyes: the first 3 and last 4 digits (139****0011)."""
    if not mobile:
        return None
    return mobile[:3] + "*" * (len(mobile) - 7) + mobile[-4:] if len(mobile) > 7 else "***"


def _message(r):
    return {"message_id": r.message_id, "template": r.template, "title": r.title,
            "body": r.body, "at": r.created_at,
            "at_local": shanghai(domain.parse_stamp(r.created_at)), "read": bool(r.read)}
