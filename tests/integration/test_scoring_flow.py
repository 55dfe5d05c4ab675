"""The scoring service (成绩) over real RabbitMQ and PostgreSQL, with a controlled clock:
the seed's 参加考试 → 查询成绩 (V → W), two exam years and 成绩无效.

Upstream, two small test-only services named ``registration`` and ``admission`` append
contract events (``shared.contracts``) to event-sourced logs of their own; their relays
publish them and scoring's tracking consumers take them as they would the real services'
(the real registration has no way to void a registration yet, and admission is being
built alongside). The marking centre (阅卷中心) is SIMULATED: the test writes its CSV.

Candidates, 2026 (一级 unless said): 王 passes 2 of 3 (CASE 71.9 of 120 fails) and the third
in 2027 (QualificationAttained carrying both years), then has his 2026 scores voided
(ScoresVoided + QualificationWithdrawn); 李 is absent from LAW; 周 sits 二级 exempt from
PRACTICE and qualifies at once, then his registration is voided (RegistrationVoided →
ScoresVoided + QualificationWithdrawn); 陈 forfeits (逾期未打印); 刘's ticket is cancelled.
"""

import time
from datetime import datetime

import pytest
from nameko.testing.services import entrypoint_hook

from services.scoring.projection import ScoringProjection
from services.scoring.service import ScoringService
from shared.clock import SHANGHAI, ControlledClock
from shared.contracts import INTEGRATION
from shared.dependencies import EventStoreProvider
from shared.errors import NotFound, Refused, ValidationFailed
from shared.events import NewEvent
from shared.projection import snapshot
from shared.service import EventSourcedService, command
from shared.session import SessionDocument, reference_session
from tests.support import CATCH_UP, DEADLINE, wait_for

pytestmark = pytest.mark.integration

AUTHORITY = {"staff_id": "authority-01"}
S26, S27 = "2026-shanghai-jiliang", "2027-shanghai-jiliang"
CANDIDATE = {"wang": ("王建国", "310104198805123455"), "li": ("李敏", "31011519920315002X"),
             "zhou": ("周婷", "310104199502210062"), "chen": ("陈静", "320102199007080044"),
             "liu": ("刘洋", "31010119761230001X")}
ACCOUNT = {k: f"acc{k}" for k in CANDIDATE}


def at(*args):
    return datetime(*args, tzinfo=SHANGHAI)


class _Upstream(EventSourcedService):
    """A stand-in upstream: appends the contract events it is given to its own log."""

    store = EventStoreProvider(INTEGRATION)

    @command
    def emit(self, events):
        self.store.append([NewEvent(e["stream_id"], e["type"], e["payload"]) for e in events])


class RegistrationStandIn(_Upstream):
    name = "registration"


class AdmissionStandIn(_Upstream):
    name = "admission"


def session_doc(year):
    d = reference_session().to_dict()
    if year != 2026:
        def move(s):
            t = datetime.fromisoformat(s)
            return t.replace(year=t.year + year - 2026).isoformat()

        d.update(session_id=f"{year}-shanghai-jiliang", exam_year=year,
                 eligibility_cutoff=f"{year}-12-31",
                 name=d["name"].replace("2026", str(year)))
        d["windows"] = {n: {"start": move(w["start"]), "end": move(w["end"])}
                        for n, w in d["windows"].items()}
        d["exam_schedule"] = [{**e, "start": move(e["start"]), "end": move(e["end"])}
                              for e in d["exam_schedule"]]
    return SessionDocument.from_dict(d).to_dict()


class Exam:
    def __init__(self, runner, clock):
        self.runner, self.clock = runner, clock
        self.tickets = {}

    def container(self, name):
        return next(c for c in self.runner.containers if c.service_name == name)

    def store(self, name):
        return next(d for d in self.container(name).dependencies
                    if isinstance(d, EventStoreProvider)).store

    def call(self, service, method, *args):
        with entrypoint_hook(self.container(service), method) as hook:
            return hook(*args)

    def wait(self, predicate, timeout=15):
        return wait_for(predicate, timeout)

    def emit(self, service, *events):
        self.call(service, "emit", [{"stream_id": stream, "type": type_, "payload": payload}
                                    for stream, type_, payload in events])

    def caught_up(self):
        """Scoring has applied everything both upstreams have logged."""
        scoring = self.store("scoring")
        self.wait(lambda: all(scoring.tracked_position(u) == self.store(u).head()
                              for u in ("registration", "admission")))

    def schedule(self, year):
        doc = session_doc(year)
        self.emit("registration", (f"session-{doc['session_id']}", "ExamSessionScheduled",
                                   {"session_id": doc["session_id"], "document": doc}))

    def issue(self, key, year, seq, level="L1", subjects=None, exemption=None):
        sid = f"{year}-shanghai-jiliang"
        number = f"{year}2916{level}{seq:06d}"
        subjects = subjects or (["L1-LAW", "L1-DATA", "L1-CASE"] if level == "L1"
                                else ["L2-LAW", "L2-PRACTICE"])
        ids = self.ids(key, sid, number)
        name, id_number = CANDIDATE[key]
        self.emit("admission", (f"ticket-{number}", "AdmissionTicketIssued", {
            **ids, "level": level, "subjects": subjects, "exemption": exemption,
            "candidate": {"name": name, "id_type": "resident_id", "id_number": id_number},
            "exam_year": year}))
        self.tickets[(key, year)] = number
        return number

    def ids(self, key, sid, number=None):
        number = number or self.tickets[(key, int(sid[:4]))]
        return {"ticket_number": number, "application_id": f"{sid}.{ACCOUNT[key]}",
                "account_id": ACCOUNT[key], "session_id": sid}

    def exam_day(self, key, year, checked_in=(), absent=(), forfeited=False, cancelled=False):
        sid = f"{year}-shanghai-jiliang"
        ids = self.ids(key, sid)
        stream = f"ticket-{ids['ticket_number']}"
        events = []
        if forfeited:
            events.append((stream, "ExamForfeited", {**ids, "reason": "逾期未打印准考证，视为放弃考试"}))
        if cancelled:
            events.append((stream, "AdmissionTicketCancelled", {**ids, "reason": "报名无效"}))
        for subject in checked_in:
            events.append((stream, "CandidateCheckedIn", {
                **ids, "subject": subject, "staff": "door-01",
                "checked_in_at": at(year, 6, 13, 8, 40).isoformat()}))
        for subject in absent:
            events.append((stream, "CandidateAbsent", {**ids, "subject": subject}))
        self.emit("admission", *events)

    def import_scores(self, sid, *rows, filename="scores.csv"):
        text = "\ufeffticket_number,subject,score\r\n" + "".join(f"{r}\r\n" for r in rows)
        return self.call("scoring", "import_scores", AUTHORITY,
                         {"session_id": sid, "filename": filename, "csv": text})

    def results(self, key, sid):
        return self.call("scoring", "candidate_results", ACCOUNT[key], sid)

    def scoring_events(self, *types):
        return [e for e in self.store("scoring").events_after(0, 100_000) if e.type in types]


@pytest.fixture
def exam(runner_factory, amqp_uri, databases):
    clock = ControlledClock(at(2026, 6, 10, 10, 0))
    config = {"AMQP_URI": amqp_uri, "DATABASE_URL": databases.new("scoring") + "_{service}",
              "CLOCK": clock, "CATCH_UP_INTERVAL": CATCH_UP, "DEADLINE_INTERVAL": DEADLINE,
              "max_workers": 10}
    runner = runner_factory(config, RegistrationStandIn, AdmissionStandIn, ScoringService)
    runner.start()
    return Exam(runner, clock)


def test_scores_from_import_to_rolling_validity_and_voiding(exam):
    s = exam
    s.schedule(2026)
    # the authority announces the score date: 查询成绩 from 2026-08-14 10:00
    s.emit("registration", ("session-2026-shanghai-jiliang", "TimetableAmended", {
        "session_id": S26, "window": "scores", "start": at(2026, 8, 14, 10, 0).isoformat(),
        "end": at(2026, 12, 31, 23, 59, 59).isoformat(), "reason": "成绩发布时间公告"}))
    wang = s.issue("wang", 2026, 1)
    li = s.issue("li", 2026, 2)
    zhou = s.issue("zhou", 2026, 1, level="L2", subjects=["L2-LAW"],
                   exemption={"subject": "L2-PRACTICE", "ground": "verifier_certificate"})
    chen = s.issue("chen", 2026, 3)
    liu = s.issue("liu", 2026, 4)
    s.exam_day("wang", 2026, checked_in=["L1-LAW", "L1-DATA", "L1-CASE"])
    s.exam_day("li", 2026, checked_in=["L1-DATA", "L1-CASE"], absent=["L1-LAW"])
    s.exam_day("zhou", 2026, checked_in=["L2-LAW"])
    s.exam_day("chen", 2026, forfeited=True, absent=["L1-LAW", "L1-DATA", "L1-CASE"])
    s.exam_day("liu", 2026, cancelled=True)
    s.caught_up()
    scoring = s.store("scoring")

    good = [f"{wang},L1-LAW,80", f"{wang},L1-DATA,72", f"{wang},L1-CASE,71.9",
            f"{li},L1-LAW,缺考", f"{li},L1-DATA,72.5", f"{li},L1-CASE,120",
            f"{zhou},计量法律法规及综合知识,60",
            f"{chen},L1-LAW,", f"{chen},L1-DATA,", f"{chen},L1-CASE,"]

    # during the exam window: too early
    s.clock.set(at(2026, 6, 14, 15, 0))
    with pytest.raises(Refused) as exc:
        s.import_scores(S26, *good)
    assert exc.value.fields["window"] == "exam"

    # after it: a file with problems is refused whole, row by row, and nothing is stored
    s.clock.set(at(2026, 6, 20, 9, 0))
    head = scoring.head()
    with pytest.raises(ValidationFailed) as exc:
        s.import_scores(S26, f"{wang},L1-LAW,80", f"{wang},L1-LAW,81", "20262916L1999999,L1-LAW,70",
                        f"{li},L1-LAW,75", f"{liu},L1-LAW,80", f"{wang},L1-DATA,121",
                        f"{zhou},L2-PRACTICE,70", f"{wang},L1-CASE", filename="bad.csv")
    assert exc.value.message.startswith("bad.csv: 7 problem(s) in 7 row(s); nothing was imported")
    assert set(exc.value.fields) == {f"row {n}" for n in range(3, 10)}
    assert "duplicate of row 2" in exc.value.fields["row 3"]
    assert "unknown ticket" in exc.value.fields["row 4"]
    assert "absent from L1-LAW" in exc.value.fields["row 5"]
    assert "cancelled" in exc.value.fields["row 6"]
    assert "out of range 0..120" in exc.value.fields["row 7"]
    assert "does not sit L2-PRACTICE (exempt)" in exc.value.fields["row 8"]
    assert "expected 3 columns" in exc.value.fields["row 9"]
    with pytest.raises(ValidationFailed) as exc:
        s.import_scores(S26)
    assert exc.value.fields == {"csv": "no rows"}
    assert scoring.head() == head

    # a first import, then a corrected one that supersedes it whole
    first = s.import_scores(S26, *good[:3], filename="v1.csv")
    assert (first["rows"], first["candidates"], first["supersedes"]) == (3, 1, None)
    second = s.import_scores(S26, *good, filename="v2.csv")
    assert second["supersedes"] == first["import_id"]
    assert (second["rows"], second["candidates"], second["absent_rows"]) == (10, 4, 4)
    assert len(second["sha256"]) == 64 and second["missing"] == 0
    view = s.call("scoring", "session_results", AUTHORITY, S26, wang)
    assert view["import"]["filename"] == "v2.csv" and not view["published"]
    assert [(x["code"], x["score"], x["passed"]) for x in view["candidates"][0]["subjects"]] == [
        ("L1-LAW", 80.0, True), ("L1-DATA", 72.0, True), ("L1-CASE", 71.9, False)]
    assert len(s.call("scoring", "session_results", AUTHORITY, S26)["candidates"]) == 5

    # nobody but the authority sees scores before publication; scores stay in the service
    with pytest.raises(Refused) as exc:
        s.results("wang", S26)
    assert "2026-08-14 10:00:00 Asia/Shanghai" in exc.value.message
    assert exc.value.fields["published_at"] == "2026-08-14T02:00:00+00:00"
    with entrypoint_hook(s.container("scoring"), "events_after") as events_after:
        published = events_after(0, 1000)
    assert all(e["payload"] == {} for e in published if e["type"] in (
        "ScoreRowsRecorded", "ImportRecorded", "TicketRecorded"))
    assert "71.9" not in str(published)
    assert [e["payload"]["rows"] for e in published if e["type"] == "ScoresImported"] == [3, 10]
    counts = s.call("scoring", "score_counts", S26)
    assert counts == {"session_id": S26, "imported_rows": 10, "published": False,
                      "candidates": 4, "passed_subjects": 0, "qualified": 0}

    # the published time: not a second before; then the timer publishes, once
    s.clock.set(at(2026, 8, 14, 9, 59, 59))
    time.sleep(0.4)
    assert not s.call("scoring", "score_counts", S26)["published"]
    s.clock.set(at(2026, 8, 14, 10, 0, 0))
    s.wait(lambda: s.call("scoring", "score_counts", S26)["published"])
    [pub] = s.scoring_events("ScoresPublished")
    assert pub.payload == {"session_id": S26, "published_at": "2026-08-14T02:00:00+00:00",
                           "candidates": 4}
    time.sleep(0.3)
    assert len(s.scoring_events("ScoresPublished", "DeadlineReached")) == 2

    # each candidate sees their own results
    mine = s.results("wang", S26)
    assert [(x["code"], x["score"], x["passed"], x["status"]) for x in mine["subjects"]] == [
        ("L1-LAW", 80.0, True, "passed"), ("L1-DATA", 72.0, True, "passed"),
        ("L1-CASE", 71.9, False, "failed")]
    assert mine["qualification"] is None and mine["subjects"][0]["full_marks"] == 120
    assert [x["status"] for x in s.results("li", S26)["subjects"]] == ["absent", "passed", "passed"]
    assert [x["status"] for x in s.results("chen", S26)["subjects"]] == ["absent"] * 3
    zhou_26 = s.results("zhou", S26)
    assert zhou_26["qualification"]["status"] == "attained"  # 二级, exempt: within 1 year
    assert zhou_26["subjects"][0]["name"] == "计量法律法规及综合知识"
    with pytest.raises(NotFound):
        s.results("liu", S26)  # cancelled: no results
    with pytest.raises(NotFound):
        s.call("scoring", "candidate_results", "someoneelse", S26)
    counts = s.call("scoring", "score_counts", S26)
    assert (counts["candidates"], counts["passed_subjects"], counts["qualified"]) == (4, 5, 1)
    assert sorted(e.payload["subject"] for e in s.scoring_events("SubjectPassed")) == [
        "L1-CASE", "L1-DATA", "L1-DATA", "L1-LAW", "L2-LAW"]

    # after publication: no imports, no second publication
    with pytest.raises(Refused) as exc:
        s.import_scores(S26, *good)
    assert "after publication" in exc.value.message
    with pytest.raises(Refused):
        s.call("scoring", "publish_scores", AUTHORITY, S26)

    # 2027: 王 sits the subject he failed
    s.schedule(2027)
    wang27 = s.issue("wang", 2027, 1, subjects=["L1-CASE"])
    s.exam_day("wang", 2027, checked_in=["L1-CASE"])
    s.caught_up()
    s.clock.set(at(2027, 6, 20, 9, 0))
    with pytest.raises(Refused) as exc:  # the authority's publication, before the window
        s.call("scoring", "publish_scores", AUTHORITY, S27)
    assert exc.value.fields["window"] == "scores" and "查询成绩 (scores)" in exc.value.message
    # nothing imported when the window opens: the deadline passes without publishing
    s.clock.set(at(2027, 8, 15, 9, 0, 1))
    s.wait(lambda: any(e.payload["session_id"] == S27 for e in s.scoring_events("DeadlineReached")))
    assert not s.call("scoring", "score_counts", S27)["published"]
    with pytest.raises(Refused) as exc:
        s.call("scoring", "publish_scores", AUTHORITY, S27)
    assert "No scores have been imported" in exc.value.message
    s.import_scores(S27, f"{wang27},L1-CASE,90.5")
    summary = s.call("scoring", "publish_scores", AUTHORITY, S27)
    assert (summary["candidates"], summary["passed_subjects"], summary["qualified"]) == (1, 1, 1)
    q = next(e.payload for e in s.scoring_events("QualificationAttained")
             if e.payload["account_id"] == ACCOUNT["wang"])
    assert q["qualification_id"] == f"{ACCOUNT['wang']}-L1" and q["session_id"] == S27
    assert [(p["subject"], p["exam_year"]) for p in q["subjects"]] == [
        ("L1-LAW", 2026), ("L1-DATA", 2026), ("L1-CASE", 2027)]
    assert q["candidate"]["name"] == "王建国"
    assert s.results("wang", S27)["qualification"]["qualification_id"] == q["qualification_id"]

    # 成绩无效: the authority voids 王's 2026 scores; the qualification rested on them
    voided = s.call("scoring", "void_scores", AUTHORITY, {
        "account_id": ACCOUNT["wang"], "session_id": S26, "reason": "告知承诺不实",
        "integrity": True})
    assert voided["withdrawn"] == [q["qualification_id"]]
    [sv] = [e.payload for e in s.scoring_events("ScoresVoided")]
    assert sv["integrity"] is True and sv["application_id"] == f"{S26}.{ACCOUNT['wang']}"
    [qw] = [e.payload for e in s.scoring_events("QualificationWithdrawn")]
    assert qw["qualification_id"] == q["qualification_id"] and "告知承诺不实" in qw["reason"]
    mine = s.results("wang", S26)
    assert mine["voided"] and mine["void_reason"] == "告知承诺不实"
    assert {x["status"] for x in mine["subjects"]} == {"voided"}
    assert all(x["score"] is None for x in mine["subjects"])
    assert s.results("wang", S27)["qualification"]["status"] == "withdrawn"
    with pytest.raises(Refused):
        s.call("scoring", "void_scores", AUTHORITY, {
            "account_id": ACCOUNT["wang"], "session_id": S26, "reason": "again"})

    # 报名无效 upstream: 周's registration is voided, so are his scores and qualification
    name, id_number = CANDIDATE["zhou"]
    s.emit("registration", (f"application-{S26}.{ACCOUNT['zhou']}", "RegistrationVoided", {
        "application_id": f"{S26}.{ACCOUNT['zhou']}", "account_id": ACCOUNT["zhou"],
        "session_id": S26, "reason": "学历证书系伪造", "by": "authority-01", "integrity": True,
        "candidate": {"name": name, "id_type": "resident_id", "id_number": id_number},
        "voided_at": at(2027, 8, 20, 10).isoformat()}))
    s.wait(lambda: len(s.scoring_events("QualificationWithdrawn")) == 2)
    zv = next(e.payload for e in s.scoring_events("ScoresVoided")
              if e.payload["account_id"] == ACCOUNT["zhou"])
    assert "学历证书系伪造" in zv["reason"] and zv["integrity"] is False
    assert s.results("zhou", S26)["qualification"]["status"] == "withdrawn"

    counts = s.call("scoring", "score_counts", S26)
    assert (counts["candidates"], counts["passed_subjects"], counts["qualified"]) == (2, 2, 0)
    business = ScoringService.business_counts(type("Worker", (), {"store": scoring})())
    assert business == {"score_imports": {"current": 2, "superseded": 1},
                        "results": {"published": 5, "voided": 2},
                        "qualifications": {"withdrawn": 2}}

    # the read model rebuilt from the log equals the live one
    projection = next(p for p in scoring.projections if isinstance(p, ScoringProjection))
    live = snapshot(scoring.engine, projection)
    assert live["results"] and live["qualifications"] and live["imports"]
    projection.rebuild(scoring)
    assert snapshot(scoring.engine, projection) == live
