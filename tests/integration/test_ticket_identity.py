"""Two exam sessions of one exam year side by side (the reference session and a second
one beside it, as a demo is), over real RabbitMQ and PostgreSQL: both seated, both
checked in, scores imported and published for both, and nothing crosses (DESIGN §5: a
ticket number is unique across every session; no consumer keys a ticket by something two
sessions could share).

Real admission, scoring and notification; registration, account (the photo on the ticket),
verification and certificate are stand-ins that append contract events to logs of their
own (``shared.contracts``), published by their relays as the real services' are. Before
the fix both sessions numbered their tickets 20262916L1000001…: scoring and notification
kept the second session's tickets as the first's, its check-ins landed on the other
session's tickets and its score file was refused as "unknown ticket"."""

from datetime import datetime

import pytest
from nameko.testing.services import entrypoint_hook

from cli.season import photo_jpeg
from services.admission.service import AdmissionService
from services.notification.projection import messages as notification_messages
from services.notification.projection import tickets as notification_tickets
from services.notification.service import NotificationService
from services.scoring.service import ScoringService
from shared.clock import SHANGHAI, ControlledClock
from shared.contracts import INTEGRATION
from shared.dependencies import EventStoreProvider
from shared.events import NewEvent
from shared.service import EventSourcedService, command
from shared.session import reference_session
from tests.support import CATCH_UP, DEADLINE, wait_for

pytestmark = pytest.mark.integration

AUTHORITY = {"staff_id": "authority-01"}
FIRST = reference_session().session_id
SECOND = f"{FIRST}-b"  # the same exam year, windows and ticket number format
L1 = ["L1-LAW", "L1-DATA", "L1-CASE"]
PEOPLE = 3  # per session


def at(*args):
    return datetime(*args, tzinfo=SHANGHAI)


class _Upstream(EventSourcedService):
    store = EventStoreProvider(INTEGRATION)

    @command
    def emit(self, events):
        self.store.append([NewEvent(e["stream_id"], e["type"], e["payload"]) for e in events])


class RegistrationStandIn(_Upstream):
    name = "registration"


class VerificationStandIn(_Upstream):
    name = "verification"


class CertificateStandIn(_Upstream):
    name = "certificate"


class AccountStandIn(_Upstream):
    name = "account"

    @command
    def get_photo(self, account_id):
        return {"jpeg_base64": photo_jpeg(1)}


def account(session, i):
    return f"{'a' if session == FIRST else 'b'}{i:031d}"  # 32 characters, like account ids


def id_number(session, i):
    return f"3101041988051{i}{1 if session == FIRST else 2}{i}X"


class Sessions:
    def __init__(self, real, stand_ins, clock):
        self.real, self.stand_ins, self.clock = real, stand_ins, clock

    def container(self, name):
        return next(c for r in (self.real, self.stand_ins) for c in r.containers
                    if c.service_name == name)

    def store(self, name):
        return next(d for d in self.container(name).dependencies
                    if isinstance(d, EventStoreProvider)).store

    def call(self, service, method, *args):
        with entrypoint_hook(self.container(service), method) as hook:
            return hook(*args)

    def emit(self, stream, type_, payload, service="registration"):
        self.call(service, "emit", [{"stream_id": stream, "type": type_, "payload": payload}])

    def caught_up(self, consumer, upstream):
        target = self.store(upstream).head()
        wait_for(lambda: self.store(consumer).tracked_position(upstream) >= target, 20)


@pytest.fixture
def sessions(runner_factory, amqp_uri, databases, tmp_path):
    clock = ControlledClock(at(2026, 4, 17, 11))
    config = {"AMQP_URI": amqp_uri, "DATABASE_URL": databases.new("ident") + "_{service}",
              "CLOCK": clock, "CATCH_UP_INTERVAL": CATCH_UP, "DEADLINE_INTERVAL": DEADLINE,
              "DELIVERY_INTERVAL": 0.1, "SMS_GATEWAY": "sink",
              "SMS_SINK_PATH": str(tmp_path / "sms-sink.jsonl"), "SMS_RATE_PER_S": 50,
              "ADMISSION_QR_KEY": "test-qr-key-0123456789abcdef0123456789", "max_workers": 10}
    stand_ins = runner_factory({**config, "DATABASE_URL": f"sqlite:///{tmp_path}/{{service}}.db"},
                               RegistrationStandIn, AccountStandIn, VerificationStandIn,
                               CertificateStandIn)
    real = runner_factory(config, AdmissionService, ScoringService, NotificationService)
    stand_ins.start()
    real.start()
    return Sessions(real, stand_ins, clock)


def test_two_sessions_of_one_exam_year_never_meet(sessions):
    s = sessions
    for sid in (FIRST, SECOND):
        d = reference_session().to_dict()
        d["session_id"] = sid
        s.emit(f"session-{sid}", "ExamSessionScheduled", {"session_id": sid, "document": d})
        for i in range(PEOPLE):
            s.emit(f"account-{account(sid, i)}", "AccountRegistered", {
                "account_id": account(sid, i), "username": account(sid, i)[:20],
                "name": f"考生{sid[-1]}{i}", "id_type": "resident_id",
                "id_number": id_number(sid, i), "mobile": f"1390000{len(sid) % 10}{i:03d}",
                "registered_at": s.clock.now().isoformat()}, service="account")
            app = f"{sid}.{account(sid, i)}"
            s.emit(f"application-{app}", "ApplicationConfirmed", {
                "application_id": app, "account_id": account(sid, i), "session_id": sid,
                "level": "L1", "subjects": L1, "exemption": None, "registration_point": "2916",
                "candidate": {"name": f"考生{sid[-1]}{i}", "id_type": "resident_id",
                              "id_number": id_number(sid, i)},
                "confirmed_at": s.clock.now().isoformat()})
    s.caught_up("admission", "registration")

    # 核对确认 closes for both at once: both are seated, from one ticket sequence
    s.clock.set(at(2026, 4, 18, 16, 0, 1))
    wait_for(lambda: all(s.call("admission", "admission_counts", sid)["tickets_issued"] == PEOPLE
                         for sid in (FIRST, SECOND)), 20)
    numbers = {sid: [s.call("admission", "get_ticket", account(sid, i), sid)["ticket_number"]
                     for i in range(PEOPLE)] for sid in (FIRST, SECOND)}
    every = numbers[FIRST] + numbers[SECOND]
    assert len(set(every)) == 2 * PEOPLE, numbers
    assert sorted(n[-6:] for n in every) == [f"{k:06d}" for k in range(1, 2 * PEOPLE + 1)]

    # 打印准考证: everyone prints
    s.clock.set(at(2026, 6, 10, 10))
    for sid in (FIRST, SECOND):
        for i in range(PEOPLE):
            s.call("admission", "download_ticket", account(sid, i), sid)

    # exam day: every candidate of both sessions checked in for 计量法律法规, by the number
    # alone (no session named: the number says which ticket it is)
    s.clock.set(at(2026, 6, 13, 8, 45))
    for sid in (FIRST, SECOND):
        for i, number in enumerate(numbers[sid]):
            got = s.call("admission", "check_in", AUTHORITY, {
                "ticket_number": number, "id_type": "resident_id",
                "id_number": id_number(sid, i), "subject": "L1-LAW"})
            assert got["ticket_number"] == number and not got["already_checked_in"]
    s.clock.set(at(2026, 6, 14, 11, 30, 1))  # every sitting over: the rest are absent
    wait_for(lambda: all(s.call("admission", "admission_counts", sid)["absent"] == 2 * PEOPLE
                         for sid in (FIRST, SECOND)), 20)
    for sid in (FIRST, SECOND):
        counts = s.call("admission", "admission_counts", sid)
        assert (counts["checked_in"], counts["absent"], counts["printed"]) == (PEOPLE, 2 * PEOPLE,
                                                                              PEOPLE)
    s.caught_up("scoring", "admission")
    s.caught_up("notification", "admission")

    # the marking centre's files, one per session: both taken, each with its own tickets
    s.clock.set(at(2026, 6, 20, 10))
    scores = {}
    for k, sid in enumerate((FIRST, SECOND)):
        rows = ["ticket_number,subject,score"]
        for i, number in enumerate(numbers[sid]):
            scores[number] = 70 + 10 * k + i
            rows.append(f"{number},L1-LAW,{scores[number]}")
        got = s.call("scoring", "import_scores", AUTHORITY, {
            "session_id": sid, "filename": f"{sid}.csv", "csv": "\n".join(rows) + "\n"})
        assert (got["rows"], got["candidates"], got["missing"]) == (PEOPLE, PEOPLE, 0)
        view = s.call("scoring", "session_results", AUTHORITY, sid)
        assert sorted(c["ticket_number"] for c in view["candidates"]) == sorted(numbers[sid])
        for c in view["candidates"]:
            assert c["account_id"].startswith("a" if sid == FIRST else "b")
            law, data, case = c["subjects"]
            assert law["score"] == scores[c["ticket_number"]] and law["status"] in ("passed",
                                                                                 "failed")
            assert data["status"] == case["status"] == "absent"

    # published at the scores window's start; each candidate sees their own sitting
    s.clock.set(at(2026, 8, 15, 9, 0, 1))
    wait_for(lambda: all(s.call("scoring", "score_counts", sid)["published"]
                         for sid in (FIRST, SECOND)), 20)
    for sid in (FIRST, SECOND):
        for i, number in enumerate(numbers[sid]):
            mine = s.call("scoring", "candidate_results", account(sid, i), sid)
            assert mine["ticket_number"] == number
            assert mine["subjects"][0]["score"] == scores[number]

    # notification: every ticket kept under its own application, each candidate told once
    s.caught_up("notification", "scoring")
    with s.store("notification").engine.connect() as c:
        kept = {(r.session_id, r.account_id): r.ticket_number
                for r in c.execute(notification_tickets.select())}
        told = sorted((r.account_id, r.session_id) for r in c.execute(
            notification_messages.select().where(
                notification_messages.c.template == "scores_published")))
    assert kept == {(sid, account(sid, i)): numbers[sid][i]
                    for sid in (FIRST, SECOND) for i in range(PEOPLE)}
    assert told == sorted((account(sid, i), sid) for sid in (FIRST, SECOND) for i in range(PEOPLE))


# -- logs written before: tickets keyed by number ---------------------------------------

def _issued(sid, who, number, **extra):
    return {"ticket_number": number, "application_id": f"{sid}.{who}", "account_id": who,
            "session_id": sid, **extra}


def test_a_scoring_log_keyed_by_ticket_number_is_rekeyed_and_goes_on(db_url):
    """A scoring log of the old shape (tickets on ``ticket-<number>``; a second session's
    check-in, sharing the number, written onto the first's ticket): the migration re-keys
    the read model by application and rebuilds it from the log; news of a ticket recorded
    there goes on on its stream; a new ticket gets a stream of its own application."""
    from sqlalchemy import select, text

    from services.scoring.projection import ScoringProjection, attendance, tickets
    from services.scoring.schemas import REGISTRY
    from services.scoring.service import on_admission_event
    from shared.eventstore.store import open_store
    from shared.projection import snapshot

    store = open_store(db_url, REGISTRY, projections=[ScoringProjection()])
    number = "20262916L1000001"
    a, b = _issued(FIRST, "wang", number), _issued(SECOND, "chen", number)
    store.append([
        NewEvent(f"ticket-{number}", "TicketRecorded", {
            **a, "level": "L1", "subjects": L1, "exemption": None,
            "candidate": {"name": "王建国"}, "exam_year": 2026}),
        NewEvent(f"ticket-{number}", "CheckInRecorded", {**a, "subject": "L1-LAW"}),
        NewEvent(f"ticket-{number}", "CheckInRecorded", {**b, "subject": "L1-LAW"}),
    ])
    # the read model as the old code left it, and its migration not yet applied
    with store.engine.begin() as c:
        c.execute(text("DROP TABLE attendance"))
        c.execute(text("DROP TABLE tickets"))
        c.execute(text("CREATE TABLE tickets (ticket_number VARCHAR(100) PRIMARY KEY, "
                       "session_id VARCHAR(100))"))
        c.execute(text("CREATE TABLE attendance (ticket_number VARCHAR(100), "
                       "subject VARCHAR(100), PRIMARY KEY (ticket_number, subject))"))
        c.execute(text("ALTER TABLE sessions ADD COLUMN deadline_reached BOOLEAN"))
        # the release before: Alembic's record at the revision before the re-keying one
        c.execute(text("UPDATE alembic_version SET version_num = 'scoring_0001' "
                       "WHERE version_num = 'scoring_0003'"))
    store.engine.dispose()

    store = open_store(db_url, REGISTRY, projections=[ScoringProjection()])
    with store.engine.connect() as c:
        assert [(r.application_id, r.ticket_number) for r in c.execute(select(tickets))] == \
            [(a["application_id"], number)]
        assert sorted((r.application_id, r.subject) for r in c.execute(select(attendance))) == \
            sorted([(a["application_id"], "L1-LAW"), (b["application_id"], "L1-LAW")])

    def apply(type_, payload):
        event = StoredEventFor(type_, payload)
        store.execute(lambda tx: on_admission_event(tx, event))

    apply("CandidateAbsent", {**a, "subject": "L1-DATA"})  # the old ticket: its old stream
    assert [e.type for e in store.read_stream(f"ticket-{number}")][-1] == "AbsenceRecorded"
    c3 = _issued("2027-shanghai-jiliang", "zhou", "20272916L1000001")
    apply("AdmissionTicketIssued", {**c3, "level": "L1", "subjects": L1, "exemption": None,
                                    "candidate": {"name": "周婷"}, "exam_year": 2027})
    apply("CandidateCheckedIn", {**c3, "subject": "L1-LAW", "staff": "s", "checked_in_at":
                                 "2027-06-13T01:00:00+00:00"})
    assert [e.type for e in store.read_stream(f"ticket-{c3['application_id']}")] == \
        ["TicketRecorded", "CheckInRecorded"]
    # news of a ticket never recorded here (the second session's, lost before): passed over
    head = store.head()
    apply("CandidateAbsent", {**b, "subject": "L1-DATA"})
    assert store.head() == head
    live = snapshot(store.engine, ScoringProjection())
    ScoringProjection().rebuild(store)
    assert snapshot(store.engine, ScoringProjection()) == live
    store.engine.dispose()


class StoredEventFor:
    """An upstream event as a consumer's handler receives it."""

    def __init__(self, type_, payload):
        self.type, self.payload = type_, payload
        self.position, self.stream_id, self.stream_version = 1, "upstream", 1
        self.schema_version, self.metadata = 1, {}


def test_a_notification_log_keyed_by_ticket_number_is_rekeyed_and_goes_on(db_url):
    """Notification's tickets of the old shape (by number): re-keyed by application and
    rebuilt; the second session's ticket with the same number is then recorded (it was
    taken for the first's, "seen before", and its printing notices never planned)."""
    from sqlalchemy import select, text

    from services.notification.consumers import on_admission
    from services.notification.projection import NotificationProjection, notices
    from services.notification.schemas import REGISTRY
    from shared.eventstore.store import open_store

    store = open_store(db_url, REGISTRY, projections=[NotificationProjection()])
    number = "20262916L1000001"
    a, b = _issued(FIRST, "wang", number), _issued(SECOND, "chen", number)
    store.append([NewEvent(f"ticket-{number}", "TicketRecorded",
                           {**a, "status": "issued", "upstream_position": 7})])
    with store.engine.begin() as c:
        c.execute(text("DROP TABLE tickets"))
        c.execute(text("CREATE TABLE tickets (ticket_number VARCHAR(100) PRIMARY KEY, "
                       "account_id VARCHAR(64))"))
        # the release before: Alembic's record at the revision before the re-keying one
        c.execute(text("UPDATE alembic_version SET version_num = 'notification_0001' "
                       "WHERE version_num = 'notification_0002'"))
    store.engine.dispose()

    store = open_store(db_url, REGISTRY, projections=[NotificationProjection()])
    with store.engine.connect() as c:
        assert [(r.application_id, r.ticket_number, r.status)
                for r in c.execute(select(notification_tickets))] == \
            [(a["application_id"], number, "issued")]
    event = StoredEventFor("AdmissionTicketIssued", {
        **b, "level": "L1", "subjects": L1, "exemption": None, "candidate": {"name": "陈静"},
        "exam_year": 2026})
    event.position = 8
    now = at(2026, 4, 18, 16, 1)
    store.execute(lambda tx: on_admission(tx, event, {"now": now}))
    with store.engine.connect() as c:
        assert sorted((r.application_id, r.ticket_number) for r in c.execute(
            select(notification_tickets))) == sorted([(a["application_id"], number),
                                                      (b["application_id"], number)])
        assert sorted(r.kind for r in c.execute(select(notices).where(
            notices.c.account_id == "chen"))) == ["printing_open", "printing_reminder"]
    store.engine.dispose()
