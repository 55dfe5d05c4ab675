"""The notification consumers against upstream logs held in hand (no broker): every
upstream event the service reacts to, including those whose real services are still
being built (admission, scoring, certificate, RegistrationVoided, enquiries), on SQLite
and PostgreSQL. The timers' work (``fire_due_notices``, ``send_due``) is driven directly.
"""

import time
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from services.notification import domain
from services.notification.consumers import HANDLERS, make_prepare
from services.notification.delivery import RetryPolicy, TokenBucket
from services.notification.gateway import SinkSmsGateway, read_sink
from services.notification.projection import NotificationProjection
from services.notification.schemas import REGISTRY
from services.notification.service import Sender, fire_due_notices, send_due
from shared.clock import SHANGHAI, ControlledClock, iso
from shared.contracts import INTEGRATION, EventRegistry
from shared.events import NewEvent
from shared.eventstore.store import open_store
from shared.projection import snapshot
from shared.session import reference_session
from shared.tracking import TrackingConsumer, events_answer

pytestmark = pytest.mark.integration

DOC = reference_session()
SESSION = DOC.session_id
MOBILES = {"wang": "13911110001", "chen": "13911110002", "liu": "13911110003",
           "li": "13911110004", "zhou": "13911110005"}
NAMES = {"wang": "王建国", "chen": "陈静", "liu": "刘洋", "li": "李敏", "zhou": "周婷"}


def at(*args):
    return datetime(*args, tzinfo=SHANGHAI)


class World:
    """Six upstream logs, the notification log, and its consumers."""

    def __init__(self, db_url, tmp_path):
        self.clock = ControlledClock(at(2026, 4, 1, 9))
        registry = EventRegistry().include(INTEGRATION)
        self.up = {name: open_store(f"sqlite:///{tmp_path}/{name}.db", registry, clock=self.clock)
                   for name in HANDLERS}
        self.projection = NotificationProjection()
        self.me = open_store(db_url, REGISTRY, clock=self.clock, projections=[self.projection])
        self.start_consumers()
        self.sink = tmp_path / "sink.jsonl"
        self.sender = Sender(SinkSmsGateway(self.sink), RetryPolicy(max_attempts=3),
                             TokenBucket(1000, 1000))

    def start_consumers(self):
        """The consumers of a starting process (they read their tracking records afresh)."""
        prepare = make_prepare({"CLOCK": self.clock}, SimpleNamespace())
        self.consumers = {name: TrackingConsumer(self.me, name, h, prepare=prepare)
                          for name, h in HANDLERS.items()}

    def emit(self, upstream, type_, payload, stream="s"):
        self.up[upstream].append([NewEvent(f"{stream}-{type_}", type_, payload)])
        self.sync()

    def fetch(self, name):
        store = self.up[name]
        return lambda pos, limit, types=None: (  # the RPC: with types, its filtered answer
            events_answer(store, name, pos, limit, types) if types is not None
            else [store.public_view(e, name) for e in store.events_after(pos, limit)])

    def sync(self):
        return sum(c.catch_up(self.fetch(n)) for n, c in self.consumers.items())

    def at(self, when):
        self.clock.set(when)
        return fire_due_notices(self.me, when)

    def messages(self, who=None):
        out = [e for e in self.me.events_after(0, 100_000) if e.type == "MessageCreated"]
        return [m.payload for m in out if who is None or m.payload["account_id"] == who]

    def templates(self, who):
        return [m["template"] for m in self.messages(who)]

    def notice(self, kind, who):
        nid = domain.notice_id(kind, SESSION, who)
        return domain.fold_notice(self.me.read_stream(domain.notice_stream(nid)))


def app(who, **extra):
    return {"application_id": f"{SESSION}.{who}", "account_id": who, "session_id": SESSION, **extra}


def ticket(who, number, **extra):
    return {"ticket_number": number, **app(who), **extra}


@pytest.fixture
def world(db_url, tmp_path):
    w = World(db_url, tmp_path)
    for who in MOBILES:
        w.emit("account", "AccountRegistered", {
            "account_id": who, "username": who, "name": NAMES[who], "id_type": "resident_id",
            "id_number": "11010519491231002X", "mobile": MOBILES[who],
            "registered_at": iso(w.clock.now())}, stream=who)
    w.emit("registration", "ExamSessionScheduled", {"session_id": SESSION,
                                                     "document": DOC.to_dict()})
    return w


def test_every_upstream_event_tells_once_and_a_replay_changes_nothing(world):
    w = world
    assert all(w.templates(who) == ["account_registered"] for who in MOBILES)
    assert w.messages("wang")[0]["body"].startswith("王建国，您已成功注册")

    # verification: 刘洋 through proof, rejection, an enquiry reopened, spot-check rejection
    w.clock.set(at(2026, 4, 8, 10))
    w.emit("verification", "ProofRequested", app("liu", cause="no_commitment",
                                                 reason="未采用告知承诺制，需人工核查"))
    w.emit("verification", "ManualCheckRejected", app(
        "liu", registration_point="2916", staff="s1", reason="工作证明未盖章", final=False))
    w.emit("verification", "EnquiryRaised", app(
        "liu", enquiry_id="q1", registration_point="2916", about="ManualCheckRejected",
        text="已盖章", raised_at=iso(w.clock.now())))
    w.emit("verification", "EnquiryAnswered", app(
        "liu", enquiry_id="q1", registration_point="2916", staff="s1", answer="请重新上传盖章件",
        reopened=True, answered_at=iso(w.clock.now())))
    w.emit("verification", "ProofRequested", app("liu", cause="enquiry_reopened", reason="x"))
    w.emit("verification", "ManualCheckPassed", app(
        "liu", registration_point="2916", staff="s1", reason="materials verified"))
    w.clock.set(at(2026, 4, 15, 10))
    w.emit("verification", "SpotCheckSelected", app("liu", draw_id="d1", seed=1, rate=0.5))
    w.emit("verification", "SpotCheckRejected", app("liu", by="a1", reason="社保记录不符"))
    w.emit("verification", "ProofRequested", app("liu", cause="spot_check_rejected",
                                                 reason="社保记录不符"))
    assert w.templates("liu") == ["account_registered", "proof_requested", "manual_check_rejected",
                                  "enquiry_answered_reopened", "manual_check_passed",
                                  "spot_check_rejected"]
    liu = {m["template"]: m["body"] for m in w.messages("liu")}
    assert "请于2026年04月14日16:00前登录报名网站上传" in liu["proof_requested"]
    assert "请于2026年04月18日16:00前重新提交证明材料" in liu["spot_check_rejected"]
    assert "报名点2916已答复：请重新上传盖章件" in liu["enquiry_answered_reopened"]
    w.emit("verification", "ManualCheckRejected", app(
        "liu", registration_point="2916", staff="s1", reason="材料不实", final=True))
    assert w.templates("liu")[-1] == "manual_check_rejected_final"

    # eligibility confirmed: confirmation notices planned for 王建国, 陈静, 李敏, 周婷
    for who in ("wang", "chen", "li", "zhou"):
        w.emit("verification", "EligibilityConfirmed", app(who, via="auto", spot_checked=False))
    w.emit("verification", "SpotCheckPassed", app("zhou", by="a1", reason="ok"))
    assert w.templates("zhou")[-1] == "spot_check_passed"
    assert w.notice("confirmation_reminder", "wang").due_at == domain.stamp(at(2026, 4, 17, 16))

    assert w.at(at(2026, 4, 17, 9, 59, 59)) == 0
    assert w.at(at(2026, 4, 17, 10, 0)) == 4
    assert w.templates("wang")[-1] == "confirmation_open"
    w.emit("registration", "ApplicationConfirmed", app(
        "wang", level="L1", subjects=["L1-LAW"], exemption=None, registration_point="2916",
        candidate={"name": "王建国"}, confirmed_at=iso(w.clock.now())))
    w.emit("registration", "ApplicationConfirmed", app(
        "li", level="L1", subjects=["L1-LAW"], exemption=None, registration_point="2916",
        candidate={"name": "李敏"}, confirmed_at=iso(w.clock.now())))
    w.clock.set(at(2026, 4, 17, 11))
    w.emit("registration", "RegistrationVoided", app(
        "chen", reason="虚假承诺", by="a1", integrity=True, candidate={"name": "陈静"},
        voided_at=iso(w.clock.now())))
    assert w.templates("chen")[-1] == "registration_voided"
    assert w.notice("confirmation_reminder", "chen").status == "cancelled"
    # the confirmation window is extended: 周婷's reminder (not sent yet) moves with it
    w.emit("registration", "TimetableAmended", {
        "session_id": SESSION, "window": "confirmation", "start": iso(at(2026, 4, 17, 10)),
        "end": iso(at(2026, 4, 18, 18)), "reason": "系统维护"})
    assert w.notice("confirmation_reminder", "zhou").due_at == domain.stamp(at(2026, 4, 17, 18))
    assert w.at(at(2026, 4, 17, 16)) == 0 and w.at(at(2026, 4, 17, 17, 59, 59)) == 0
    assert w.at(at(2026, 4, 17, 18)) == 1  # only 周婷: the others confirmed or were voided
    zhou = w.messages("zhou")[-1]
    assert zhou["template"] == "confirmation_reminder" and "2026年04月18日18:00截止" in zhou["body"]
    w.emit("registration", "ApplicationLapsed", app("zhou", reason="逾期"))

    # admission: tickets, printing notices; 王建国 prints, 李敏 does not
    w.clock.set(at(2026, 5, 20))
    w.emit("admission", "AdmissionTicketIssued", ticket(
        "wang", "T0001", level="L1", subjects=["L1-LAW"], exemption=None,
        candidate={"name": "王建国"}, exam_year=2026))
    w.emit("admission", "AdmissionTicketIssued", ticket(
        "li", "T0002", level="L1", subjects=["L1-LAW"], exemption=None,
        candidate={"name": "李敏"}, exam_year=2026))
    assert w.at(at(2026, 6, 10, 10)) == 2
    assert "准考证号T0001" in w.messages("wang")[-1]["body"]
    w.clock.set(at(2026, 6, 10, 11))
    w.emit("admission", "AdmissionTicketPrinted", ticket("wang", "T0001", printed_at=iso(
        w.clock.now()), download=1))
    assert w.at(at(2026, 6, 11, 16)) == 1
    assert w.templates("li")[-1] == "printing_reminder"
    assert w.notice("printing_reminder", "wang").status == "cancelled"
    w.clock.set(at(2026, 6, 12, 16, 0, 1))
    w.emit("admission", "ExamForfeited", ticket("li", "T0002", reason="逾期未打印准考证"))

    # scores: to every ticket holder of the session who may have any (not 李敏, forfeited)
    w.clock.set(at(2026, 8, 15, 9))
    w.emit("scoring", "ScoresPublished", {"session_id": SESSION,
                                          "published_at": iso(w.clock.now()), "candidates": 1})
    assert w.templates("wang")[-1] == "scores_published"
    assert "scores_published" not in w.templates("li")
    w.clock.set(at(2026, 9, 20))
    w.emit("certificate", "CertificateIssued", {
        "certificate_number": "C-2026-0001", "account_id": "wang", "qualification_id": "q1",
        "session_id": SESSION, "level": "L1", "issued_at": iso(w.clock.now()), "status_index": 0})
    w.emit("certificate", "CertificateRevoked", {
        "certificate_number": "C-2026-0001", "account_id": "wang", "reason": "成绩无效",
        "revoked_at": iso(w.clock.now()), "status_index": 0})
    assert w.templates("wang")[-2:] == ["certificate_issued", "certificate_revoked"]
    assert "一级注册计量师职业资格电子证书已制发（证书编号C-2026-0001）" in w.messages("wang")[-2]["body"]

    # replay every consumer from the start: nothing new at all
    head = w.me.head()
    total = len(w.messages())
    with w.me.engine.begin() as c:
        c.exec_driver_sql("UPDATE tracking SET position = 0")
    w.start_consumers()  # a process that starts with the records reset
    assert w.sync() > 0  # every upstream event applied again ...
    assert w.me.tracking() == {name: store.head() for name, store in w.up.items()}
    assert w.me.head() == head and len(w.messages()) == total  # ... to no effect

    # the SMS go out through the sink, once each, to the current numbers
    assert send_due(w.me, w.sender, w.clock) == total
    sent = read_sink(w.sink)
    assert len(sent) == total and not any(s["duplicate"] for s in sent)
    assert {s["to"] for s in sent} == set(MOBILES.values())
    assert send_due(w.me, w.sender, w.clock) == 0

    # rebuilding the read model gives the live one
    live = snapshot(w.me.engine, w.projection)
    w.projection.rebuild(w.me)
    assert snapshot(w.me.engine, w.projection) == live


def test_events_overtaking_the_account_and_the_session(db_url, tmp_path):
    """Verification's consumer ran ahead of registration's and account's: the notice
    waits for the session's timetable, the message for the name and number."""
    w = World(db_url, tmp_path)
    w.clock.set(at(2026, 4, 15, 10))
    w.up["verification"].append([NewEvent("v", "EligibilityConfirmed",
                                          app("wang", via="auto", spot_checked=False))])
    w.up["verification"].append([NewEvent("v", "SpotCheckPassed", app("wang", by="a", reason="ok"))])
    w.consumers["verification"].catch_up(w.fetch("verification"))
    assert w.notice("confirmation_open", "wang").due_at is None
    (msg,) = w.messages("wang")
    assert msg["body"].startswith("考生，您报考的2026-shanghai-jiliang资格抽查复核已通过")
    assert send_due(w.me, w.sender, w.clock) == 1  # no number yet: retried later
    (d,) = [e.payload for e in w.me.events_after(0, 1000) if e.type == "SmsAttemptFailed"]
    assert d["error"] == "no mobile number known for this account yet"

    w.emit("registration", "ExamSessionScheduled", {"session_id": SESSION,
                                                     "document": DOC.to_dict()})
    assert w.notice("confirmation_open", "wang").due_at == domain.stamp(at(2026, 4, 17, 10))
    w.emit("account", "AccountRegistered", {
        "account_id": "wang", "username": "wang", "name": "王建国", "id_type": "resident_id",
        "id_number": "11010519491231002X", "mobile": MOBILES["wang"],
        "registered_at": iso(w.clock.now())})
    w.clock.advance(timedelta(seconds=30))
    assert send_due(w.me, w.sender, w.clock) == 2  # the retry, and account_registered
    assert [s["to"] for s in read_sink(w.sink)] == [MOBILES["wang"]] * 2
    assert w.at(at(2026, 4, 17, 10)) == 1
    assert w.messages("wang")[-1]["body"].startswith("王建国，")


def test_scores_voided_is_told_to_a_candidate_without_a_certificate(world):
    """成绩无效 for a candidate who holds no certificate: no CertificateRevoked will tell
    them, so ScoresVoided does; once, however often it is delivered."""
    w = world
    w.clock.set(at(2026, 8, 20, 10))
    w.emit("scoring", "ScoresVoided", app("li", reason="考试违纪（携带通讯工具）", by="a1",
                                          integrity=False))
    assert w.templates("li") == ["account_registered", "scores_voided"]
    (msg,) = [m for m in w.messages("li") if m["template"] == "scores_voided"]
    assert msg["title"] == "考试成绩无效"
    assert msg["body"].startswith("李敏，您参加的2026年度全国注册计量师职业资格考试（上海考区）考试成绩已被认定无效，"
                                  "原因：考试违纪（携带通讯工具）。")
    assert all(w.templates(who) == ["account_registered"] for who in MOBILES if who != "li")
    sms = [e.payload["text"] for e in w.me.events_after(0, 10_000) if e.type == "SmsQueued"
           and e.payload["template"] == "scores_voided"]
    assert sms == ["【上海人事考试】李敏，您参加的2026年度全国注册计量师职业资格考试（上海考区）"
                   "考试成绩已被认定无效，原因：考试违纪（携带通讯工具）。如有疑问请联系考试机构。"]
    # delivered again (a replay of the consumer): still one message
    with w.me.engine.begin() as c:
        c.exec_driver_sql("UPDATE tracking SET position = 0 WHERE upstream = 'scoring'")
    w.sync()
    assert w.templates("li") == ["account_registered", "scores_voided"]


def test_a_stop_ends_an_sms_batch_waiting_on_the_rate_limit(world):
    """A batch over the rate limit waits for tokens (SMS_BATCH / SMS_RATE_PER_S: 20 s by
    default); a stop must not wait it out: no SMS is begun once the service is stopping,
    and those left stay queued for the next start."""
    w = world
    w.sender = Sender(SinkSmsGateway(w.sink), RetryPolicy(max_attempts=3),
                      TokenBucket(0.2, 1))  # one now, the next in 5 s
    assert send_due(w.me, w.sender, w.clock, stopping=lambda: True) == 0
    assert not w.sink.exists() or not read_sink(w.sink)

    stop_at = time.monotonic() + 1.0
    started = time.monotonic()
    sent = send_due(w.me, w.sender, w.clock, stopping=lambda: time.monotonic() >= stop_at)
    assert sent == 1 and time.monotonic() - started < 2.5
    assert len(read_sink(w.sink)) == 1
    w.sender = Sender(SinkSmsGateway(w.sink), RetryPolicy(max_attempts=3), TokenBucket(1000, 1000))
    assert send_due(w.me, w.sender, w.clock) == len(MOBILES) - 1  # the rest, at the next start
