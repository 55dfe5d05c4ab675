"""Notifications across real services over RabbitMQ and PostgreSQL, on a controlled clock.

The real account, registration and verification services run; admission, scoring and
certificate are small in-test stand-ins (named like the real ones, appending their
contract events: the real services are being built) so the notification service follows
six upstream logs exactly as in production. SMS go to the local sink (a JSONL file).

Two candidates through one season: 王建国 (commitment, auto check) and 陈静 (no
commitment: proof, manual check). Checked: one message per (event, candidate) despite
duplicate deliveries and a replayed consumer; notices at their exact instants (a second
before: nothing); a TimetableAmended moving a reminder; a restart of the notification
service between scheduling and firing still fires once; the rebuild equals the live read
model; no whole mobile number in the logs.
"""

import io
import time
from datetime import datetime
from types import SimpleNamespace

import pytest
from nameko.testing.services import entrypoint_hook

from services.account.service import AccountService
from services.notification.gateway import read_sink
from services.notification.projection import NotificationProjection
from services.notification.service import NotificationService
from services.registration.service import RegistrationService
from services.verification.service import VerificationService
from shared import logging as klogging
from shared.clock import SHANGHAI, ControlledClock, iso
from shared.contracts import INTEGRATION, EventRegistry
from shared.dependencies import EventStoreProvider, TrackingProvider
from shared.errors import NotFound, ValidationFailed
from shared.events import NewEvent
from shared.projection import snapshot
from shared.relay import KombuPublisher
from shared.service import EventSourcedService, command
from shared.session import REFERENCE_SESSION_PATH
from tests.integration.test_account_flow import jpeg
from tests.support import CATCH_UP, DEADLINE, wait_for

pytestmark = pytest.mark.integration

SESSION = "2026-shanghai-jiliang"
STAFF = {"staff_id": "staff-01", "registration_point": "2916"}
AUTHORITY = {"staff_id": "authority-01"}
PDF = "JVBERi0xLjQKJSBwcm9vZgolJUVPRgo="  # a tiny PDF, base64
PEOPLE = {  # name, ID number, 本科 certificate, mobile, commitment
    "wang": ("王建国", "310104198805123455", "102471201005001234", "13912340001", True),
    "chen": ("陈静", "320102199007080044", "102511201205003317", "13912340002", False),
}
UPSTREAM_EVENTS = EventRegistry().include(INTEGRATION)


def at(*args):
    return datetime(*args, tzinfo=SHANGHAI)


# --- in-test stand-ins for the services being built (they only append contract events) ---

class AdmissionStandIn(EventSourcedService):
    """Stands in for admission: issues and prints tickets on request (test only)."""

    name = "admission"
    store = EventStoreProvider(UPSTREAM_EVENTS)

    @command
    def issue_ticket(self, account_id, session_id, ticket_number):
        self.store.append([NewEvent(f"ticket-{ticket_number}", "AdmissionTicketIssued", {
            "ticket_number": ticket_number, "application_id": f"{session_id}.{account_id}",
            "account_id": account_id, "session_id": session_id, "level": "L1",
            "subjects": ["L1-LAW", "L1-DATA", "L1-CASE"], "exemption": None,
            "candidate": {"name": "x"}, "exam_year": 2026})])

    @command
    def print_ticket(self, account_id, session_id, ticket_number):
        self.store.append([NewEvent(f"ticket-{ticket_number}", "AdmissionTicketPrinted", {
            "ticket_number": ticket_number, "application_id": f"{session_id}.{account_id}",
            "account_id": account_id, "session_id": session_id,
            "printed_at": iso(self.clock.now()), "download": 1})])


class ScoringStandIn(EventSourcedService):
    name = "scoring"
    store = EventStoreProvider(UPSTREAM_EVENTS)

    @command
    def publish(self, session_id, candidates):
        self.store.append([NewEvent(f"publication-{session_id}", "ScoresPublished", {
            "session_id": session_id, "published_at": iso(self.clock.now()),
            "candidates": candidates})])


class CertificateStandIn(EventSourcedService):
    name = "certificate"
    store = EventStoreProvider(UPSTREAM_EVENTS)

    @command
    def issue(self, account_id, session_id, number):
        self.store.append([NewEvent(f"certificate-{number}", "CertificateIssued", {
            "certificate_number": number, "account_id": account_id, "qualification_id": "q1",
            "session_id": session_id, "level": "L1", "issued_at": iso(self.clock.now()),
            "status_index": 0})])


class Season:
    def __init__(self, runner_factory, config, stand_in_config, clock):
        self.runner_factory, self.config, self.clock = runner_factory, config, clock
        self.upstreams = runner_factory(config, AccountService, RegistrationService,
                                        VerificationService)
        # the stand-ins keep their logs in SQLite files: fewer databases to create
        self.stand_ins = runner_factory(stand_in_config, AdmissionStandIn, ScoringStandIn,
                                        CertificateStandIn)
        self.upstreams.start()
        self.stand_ins.start()
        self.notifier = None
        self.start_notification()
        self.accounts = {}

    def start_notification(self):
        self.notifier = self.runner_factory(self.config, NotificationService)
        self.notifier.start()

    def stop_notification(self):
        self.notifier.stop()
        self.notifier = None

    def container(self, name):
        runners = [self.upstreams, self.stand_ins] + ([self.notifier] if self.notifier else [])
        return next(c for r in runners for c in r.containers if c.service_name == name)

    def store(self, name):
        return next(d for d in self.container(name).dependencies
                    if isinstance(d, EventStoreProvider)).store

    def call(self, service, method, *args):
        with entrypoint_hook(self.container(service), method) as hook:
            return hook(*args)

    def wait(self, predicate, timeout=20):
        return wait_for(predicate, timeout)

    def register(self, key):
        name, id_number, cert, mobile, _ = PEOPLE[key]
        account_id = self.call("account", "register", {
            "name": name, "id_type": "resident_id", "id_number": id_number, "mobile": mobile,
            "username": f"{key}_2026", "password": "pass2026word"})["account_id"]
        birth = f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}"
        for section, data in {
            "photo": {"jpeg_base64": jpeg()},
            "basic": {"gender": "M" if int(id_number[16]) % 2 else "F", "birth_date": birth,
                      "ethnicity": "汉族"},
            "education": {"education": [{"level": "本科", "school": "某大学", "major": "测控",
                                         "major_category": "science_engineering",
                                         "graduated_on": "2005-07-01", "certificate_no": cert}],
                          "degrees": []},
            "work": {"entries": [{"employer": "上海市计量测试技术研究院", "position": "工程师",
                                  "start": "2012-01-01", "end": None, "metrology": True}]},
            "contact": {"email": f"{key}@example.com", "address": "上海市徐汇区"},
        }.items():
            self.call("account", "update_profile_section", account_id, section, data)
        self.accounts[key] = account_id

    def app_id(self, key):
        return f"{SESSION}.{self.accounts[key]}"

    def messages(self, key):
        return self.call("notification", "messages", self.accounts[key])

    def templates(self, key):
        return [m["template"] for m in reversed(self.messages(key))]  # oldest first

    def has(self, key, template, count=1):
        return self.wait(lambda: self.templates(key).count(template) == count)

    def notices(self, key):
        return {n["kind"]: n for n in self.call("notification", "notices", None,
                                                 self.accounts[key], None, 100)}


@pytest.fixture
def season(runner_factory, amqp_uri, databases, tmp_path):
    clock = ControlledClock(at(2026, 4, 1, 9, 0))
    config = {"AMQP_URI": amqp_uri, "DATABASE_URL": databases.new("notify") + "_{service}",
              "CLOCK": clock, "CATCH_UP_INTERVAL": CATCH_UP, "DEADLINE_INTERVAL": DEADLINE,
              "DELIVERY_INTERVAL": 0.1, "SMS_GATEWAY": "sink",
              "SMS_SINK_PATH": str(tmp_path / "sms-sink.jsonl"), "SMS_RATE_PER_S": 50,
              "max_workers": 10, "PASSWORD_HASH": {"time_cost": 1, "memory_cost": 1024}}
    stand_ins = {**config, "DATABASE_URL": f"sqlite:///{tmp_path}/{{service}}.db"}
    s = Season(runner_factory, config, stand_ins, clock)
    s.sink = tmp_path / "sms-sink.jsonl"
    return s


def test_a_season_of_notifications(season):
    logs = io.StringIO()
    klogging.configure(stream=logs, level="INFO")
    try:
        _season(season)
    finally:
        klogging.configure(level="WARNING")
    text = logs.getvalue()
    assert '"sms.sent"' in text and '"notice.fired"' in text
    for _, _, _, mobile, _ in PEOPLE.values():
        assert mobile not in text  # never whole in the logs ...
        assert f"{mobile[:3]}****{mobile[-4:]}" in text  # ... but masked where it is logged


def _season(s):
    s.call("registration", "load_session", {"yaml": REFERENCE_SESSION_PATH.read_text("utf-8")})
    for key in PEOPLE:
        s.register(key)
        s.has(key, "account_registered")
    msg = s.messages("wang")[0]
    assert msg["title"] == "账号注册成功" and msg["body"].startswith("王建国，您已成功注册")
    s.wait(lambda: s.call("registration", "get_candidate", s.accounts["chen"])["complete"])

    # 网上报名: 陈静 without the commitment is asked for proof, with the reason
    s.clock.set(at(2026, 4, 7, 10, 0))
    for key, (name, *_, commitment) in PEOPLE.items():
        s.call("registration", "submit_application", s.accounts[key], {
            "session_id": SESSION, "level": "L1", "registration_point": "2916",
            "commitment": ({"pledge_version": "2026-v1", "signed_name": name, "agreed": True}
                           if commitment else None)})
    s.has("chen", "proof_requested")
    proof = s.messages("chen")[0]
    assert proof["body"].startswith("陈静，您报考的2026年度全国注册计量师职业资格考试（上海考区）"
                                    "需提交证明材料（未采用告知承诺制，需人工核查）。核查说明：")
    assert "请于2026年04月14日16:00前登录报名网站上传" in proof["body"]
    s.clock.set(at(2026, 4, 8, 10, 0))
    s.wait(lambda: s.call("registration", "get_application", s.accounts["chen"],
                          SESSION)["status"] == "proof_requested")
    s.call("registration", "submit_proof", s.accounts["chen"], {
        "session_id": SESSION, "files": [{"name": "工作证明.pdf", "content_base64": PDF}]})
    s.wait(lambda: s.call("verification", "get_case", s.app_id("chen"))["status"] ==
           "awaiting_manual")
    s.clock.set(at(2026, 4, 8, 14, 0))
    s.call("verification", "decide_manual", STAFF, {"application_id": s.app_id("chen"),
                                                    "decision": "pass"})
    s.has("chen", "manual_check_passed")

    # the same verification event delivered twice more: still one message
    verification = s.store("verification")
    passed = next(e for e in verification.events_after(0, 1000) if e.type == "ManualCheckPassed")
    publisher = KombuPublisher(s.config["AMQP_URI"], "verification")
    try:
        publisher.publish({"events": [verification.public_view(passed, "verification")] * 2,
                           "after": passed.position - 1, "last": passed.position,
                           "log_id": verification.log_id})
    finally:
        publisher.close()

    # 抽查复核: one drawn and passed, the other passes through; both eligible
    s.clock.set(at(2026, 4, 15, 9, 0))
    draw = s.call("verification", "draw_spot_check", AUTHORITY,
                  {"session_id": SESSION, "rate": 0.5, "seed": 2026})
    (drawn,) = [k for k in PEOPLE if s.app_id(k) in draw["selected"]]
    s.call("verification", "decide_spot_check", AUTHORITY,
           {"application_id": s.app_id(drawn), "decision": "pass"})
    s.has(drawn, "spot_check_passed")
    for key in PEOPLE:
        s.wait(lambda key=key: s.notices(key).get("confirmation_reminder"))
        assert s.notices(key)["confirmation_reminder"]["due_local"] == "2026-04-17 16:00:00"
    time.sleep(0.3)
    assert s.templates("chen").count("manual_check_passed") == 1

    # 核对确认 opens at 10:00:00: a second before, nothing
    s.clock.set(at(2026, 4, 17, 9, 59, 59))
    time.sleep(0.3)
    assert not any("confirmation_open" in s.templates(k) for k in PEOPLE)
    s.clock.set(at(2026, 4, 17, 10, 0, 0))
    for key in PEOPLE:
        s.has(key, "confirmation_open")
    opening = s.messages("wang")[0]
    assert opening["title"] == "请完成核对确认"
    assert "请于2026年04月17日10:00至2026年04月18日16:00登录报名网站完成核对确认" in opening["body"]

    # 王建国 confirms: his reminder is cancelled
    s.clock.set(at(2026, 4, 17, 10, 30))
    s.call("registration", "confirm_application", s.accounts["wang"], SESSION)
    s.wait(lambda: s.notices("wang")["confirmation_reminder"]["status"] == "cancelled")

    # the window is extended to 18:00 on the 18th: 陈静's reminder moves to 18:00 on the 17th
    s.clock.set(at(2026, 4, 17, 11, 0))
    s.call("registration", "amend_timetable", {
        "session_id": SESSION, "window": "confirmation", "start": iso(at(2026, 4, 17, 10)),
        "end": iso(at(2026, 4, 18, 18)), "reason": "系统维护，核对确认延长"})
    s.wait(lambda: s.notices("chen")["confirmation_reminder"]["due_local"] ==
           "2026-04-17 18:00:00")
    s.clock.set(at(2026, 4, 17, 16, 0))  # the old due time: nothing any more
    time.sleep(0.3)
    s.clock.set(at(2026, 4, 17, 17, 59, 59))
    time.sleep(0.3)
    assert "confirmation_reminder" not in s.templates("chen")

    # the notification service goes down before the reminder is due and comes back after
    s.stop_notification()
    s.clock.set(at(2026, 4, 17, 18, 0, 0))
    s.start_notification()
    s.has("chen", "confirmation_reminder")
    reminder = s.messages("chen")[0]
    assert "核对确认将于2026年04月18日18:00截止" in reminder["body"]
    time.sleep(0.3)
    assert s.templates("chen").count("confirmation_reminder") == 1
    assert "confirmation_reminder" not in s.templates("wang")
    s.clock.set(at(2026, 4, 17, 18, 30))
    s.call("registration", "confirm_application", s.accounts["chen"], SESSION)

    # 打印准考证: tickets (the admission stand-in), the window opens, 王建国 prints
    s.clock.set(at(2026, 5, 20, 9, 0))
    for n, key in enumerate(PEOPLE, start=1):
        s.call("admission", "issue_ticket", s.accounts[key], SESSION, f"2026291601{n:04d}")
    for key in PEOPLE:
        s.wait(lambda key=key: s.notices(key).get("printing_reminder"))
    s.clock.set(at(2026, 6, 10, 9, 59, 59))
    time.sleep(0.3)
    assert "printing_open" not in s.templates("wang")
    s.clock.set(at(2026, 6, 10, 10, 0, 0))
    for key in PEOPLE:
        s.has(key, "printing_open")
    assert "准考证号20262916010001" in s.messages("wang")[0]["body"]
    s.clock.set(at(2026, 6, 10, 11, 0))
    s.call("admission", "print_ticket", s.accounts["wang"], SESSION, "20262916010001")
    s.wait(lambda: s.notices("wang")["printing_reminder"]["status"] == "cancelled")
    s.clock.set(at(2026, 6, 11, 15, 59, 59))
    time.sleep(0.3)
    assert "printing_reminder" not in s.templates("chen")
    s.clock.set(at(2026, 6, 11, 16, 0, 0))
    s.has("chen", "printing_reminder")
    assert "printing_reminder" not in s.templates("wang")

    # 查询成绩 (session-level): everyone with a ticket; then published twice more, and the
    # scoring consumer replayed from the start: still one message each
    s.clock.set(at(2026, 8, 15, 9, 0))
    s.call("scoring", "publish", SESSION, 2)
    for key in PEOPLE:
        s.has(key, "scores_published")
    scoring = s.store("scoring")
    publisher = KombuPublisher(s.config["AMQP_URI"], "scoring")
    try:
        published = scoring.events_after(0)
        for _ in range(2):  # the whole log, twice more
            publisher.publish({"events": [scoring.public_view(e, "scoring") for e in published],
                               "after": 0, "last": published[-1].position,
                               "log_id": scoring.log_id})
    finally:
        publisher.close()
    notification = s.store("notification")
    # the SMS of these messages go out on the delivery timer: let them, so what comes
    # after ``head`` is the replay's alone
    s.wait(lambda: not s.call("notification", "deliveries", "queued"))
    head = notification.head()
    with notification.engine.begin() as c:
        c.exec_driver_sql("UPDATE tracking SET position = 0 WHERE upstream IN ('scoring', 'admission')")
    # as a restart would: the consumers read their records again (a running one trusts its own)
    next(d for d in s.container("notification").dependencies
         if isinstance(d, TrackingProvider)).start()
    s.wait(lambda: notification.tracked_position("scoring") == scoring.head() and
           notification.tracked_position("admission") == s.store("admission").head())
    time.sleep(0.3)
    # replayed: nothing new (a delivery outcome of an earlier message is not new)
    after = [e.type for e in notification.events_after(head, 100)]
    assert not [t for t in after if t not in ("SmsSent", "SmsAttemptFailed", "SmsFailed")], after
    assert all(s.templates(k).count("scores_published") == 1 for k in PEOPLE)

    # 证书
    s.clock.set(at(2026, 9, 20, 9, 0))
    s.call("certificate", "issue", s.accounts["wang"], SESSION, "C-2026-0001")
    s.has("wang", "certificate_issued")

    expected = {
        "wang": ["account_registered", "confirmation_open", "printing_open", "scores_published",
                 "certificate_issued"],
        "chen": ["account_registered", "proof_requested", "manual_check_passed",
                 "confirmation_open", "confirmation_reminder", "printing_open",
                 "printing_reminder", "scores_published"],
    }
    expected[drawn].insert(expected[drawn].index("confirmation_open"), "spot_check_passed")
    for key in PEOPLE:
        assert s.templates(key) == expected[key]
    total = sum(map(len, expected.values()))

    # every SMS went out once, to the right number
    s.wait(lambda: s.call("notification", "notification_counts") ==
           {"queued": 0, "sent": total, "failed": 0, "in_site": total})
    sent = read_sink(s.sink)
    assert len(sent) == total and not any(r["duplicate"] for r in sent)
    by_number = {}
    for r in sent:
        by_number.setdefault(r["to"], []).append(r["text"])
    assert {k: len(by_number[PEOPLE[k][3]]) for k in PEOPLE} == {k: len(v) for k, v in expected.items()}
    assert all(t.startswith("【上海人事考试】") for t in by_number[PEOPLE["wang"][3]])
    assert sorted(d["status"] for d in s.call("notification", "deliveries", "sent", 100)) == \
        ["sent"] * total

    # 站内信: newest first; read one; someone else's is as good as absent
    newest = s.messages("wang")[0]
    assert newest["template"] == "certificate_issued" and newest["read"] is False
    assert s.call("notification", "mark_read", s.accounts["wang"], newest["message_id"])["read"]
    assert s.messages("wang")[0]["read"] is True
    with pytest.raises(NotFound):
        s.call("notification", "mark_read", s.accounts["chen"], newest["message_id"])
    with pytest.raises(ValidationFailed):
        s.call("notification", "mark_read", s.accounts["chen"], "not-an-id")
    with pytest.raises(ValidationFailed):
        s.call("notification", "deliveries", "lost", 100)
    counts = NotificationService.business_counts(SimpleNamespace(store=notification))
    assert counts["sms"] == {"sent": total}
    assert counts["in_site_messages"] == {"read": 1, "unread": total - 1}
    assert counts["notices"] == {"fired": 6, "cancelled": 2}

    # rebuilding the read model gives the live one
    projection = next(p for p in notification.projections if isinstance(p, NotificationProjection))
    live = snapshot(notification.engine, projection)
    assert s.call("notification", "rebuild") == {"notification": notification.head()}
    assert snapshot(notification.engine, projection) == live
