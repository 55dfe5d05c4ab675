"""The seed's chart from 核对确认 (T) to 参加考试 (V), over real RabbitMQ and PostgreSQL, with
account, registration, verification and admission in one runner and a controlled clock.

Two candidates (王建国, 李敏) apply under the pledge, pass the automatic check, pass through
the spot check and confirm. When confirmation closes admission seats them and issues their
tickets (U). 王建国 downloads his ticket inside the printing window (refused before and
after it); 李敏 never does and forfeits the exam when printing closes. On exam day (V) the
door refuses 李敏's forfeited ticket and 王建国 with a wrong document, then checks 王建国 in
for 计量法律法规及综合知识 by the QR code on his PDF; when the day's sittings end, absences are
recorded exactly for the subjects nobody checked in for.
"""

import base64

import pytest

from services.account.service import AccountService
from services.admission import ticket_code
from services.admission.projection import AdmissionProjection
from services.admission.service import AdmissionService
from services.registration.service import RegistrationService
from services.verification.service import VerificationService
from shared.clock import ControlledClock
from shared.errors import NotFound, Refused
from shared.pdf import read_pdf
from shared.projection import snapshot
from shared.session import REFERENCE_SESSION_PATH
from tests.integration.test_application_flow import PEOPLE, SESSION, Season, at
from tests.support import CATCH_UP, DEADLINE

pytestmark = pytest.mark.integration

AUTHORITY = {"staff_id": "door-07"}
QR_KEY = "integration-test-qr-key-0123456789abcdef"


@pytest.fixture
def season(runner_factory, amqp_uri, databases):
    clock = ControlledClock(at(2026, 4, 1, 9, 0))
    config = {"AMQP_URI": amqp_uri, "DATABASE_URL": databases.new("admission") + "_{service}",
              "CLOCK": clock, "CATCH_UP_INTERVAL": CATCH_UP, "DEADLINE_INTERVAL": DEADLINE,
              "max_workers": 10, "PASSWORD_HASH": {"time_cost": 1, "memory_cost": 1024},
              "ADMISSION_QR_KEY": QR_KEY}
    runner = runner_factory(config, AccountService, RegistrationService, VerificationService,
                            AdmissionService)
    runner.start()
    return Season(runner, clock)


def counts(s):
    return s.call("admission", "admission_counts", SESSION)


def events(s, type_):
    return [e for e in s.store("admission").events_after(0, 10_000) if e.type == type_]


def test_chart_t_to_v(season):
    s = season
    s.call("registration", "load_session", {"yaml": REFERENCE_SESSION_PATH.read_text("utf-8")})
    for key in ("wang", "li"):
        s.candidate(key)
        s.known_complete(key)
    s.clock.set(at(2026, 4, 7, 10, 0))
    for key in ("wang", "li"):
        s.apply(key)
        s.status(key, "auto_passed")
    s.clock.set(at(2026, 4, 17, 0, 0, 0))  # spot check closed: both pass through
    for key in ("wang", "li"):
        s.status(key, "eligible")
    s.clock.set(at(2026, 4, 17, 10, 30))
    for key in ("wang", "li"):
        s.call("registration", "confirm_application", s.accounts[key], SESSION)
    s.wait(lambda: counts(s)["awaiting_seat"] == 2)
    with pytest.raises(NotFound):  # no ticket before confirmation closes
        s.call("admission", "get_ticket", s.accounts["wang"], SESSION)

    # U: confirmation closes at 16:00:00 on the 18th: seats and tickets, once
    s.clock.set(at(2026, 4, 18, 16, 0, 1))
    s.wait(lambda: counts(s)["tickets_issued"] == 2)
    tickets = {k: s.call("admission", "get_ticket", s.accounts[k], SESSION) for k in ("wang", "li")}
    assert {(t["venue"]["code"], t["room"], t["seat"]) for t in tickets.values()} == \
        {("SH-SAMPLE-01", "101", 1), ("SH-SAMPLE-01", "101", 2)}
    assert {t["ticket_number"] for t in tickets.values()} == {"20262916L1000001", "20262916L1000002"}
    wang = tickets["wang"]
    assert wang["status"] == "issued" and wang["printed_count"] == 0
    assert [x["name"] for x in wang["subjects"]] == ["计量法律法规及综合知识", "测量数据处理与计量专业实务",
                                                    "计量专业案例分析"]
    assert wang["printing_window"]["start"].startswith("2026-06-10T10:00:00")
    issued = events(s, "AdmissionTicketIssued")
    assert len(issued) == 2 and {e.payload["candidate"]["name"] for e in issued} == {"王建国", "李敏"}

    # U: printing only inside its window
    with pytest.raises(Refused) as exc:
        s.call("admission", "download_ticket", s.accounts["wang"], SESSION)
    assert exc.value.fields["window"] == "ticket_printing"
    s.clock.set(at(2026, 6, 10, 10, 0))
    got = s.call("admission", "download_ticket", s.accounts["wang"], SESSION)
    assert got["content_type"] == "application/pdf" and got["filename"].endswith(".pdf")
    pdf = read_pdf(base64.b64decode(got["data"]))
    name, id_number = PEOPLE["wang"][:2]
    for text in (name, id_number, wang["ticket_number"], "样例考点一（徐汇）", "考场：101",
                 f"座位号：{wang['seat']}", "计量法律法规及综合知识", "测量数据处理与计量专业实务",
                 "计量专业案例分析", "考场规则"):
        assert text in pdf.text, text
    (qr,) = pdf.qr_codes
    assert ticket_code.read_payload(QR_KEY.encode(), qr) == (SESSION, wang["ticket_number"])
    s.call("admission", "download_ticket", s.accounts["wang"], SESSION)
    assert [e.payload["download"] for e in events(s, "AdmissionTicketPrinted")] == [1, 2]
    assert s.call("admission", "get_ticket", s.accounts["wang"], SESSION)["printed_count"] == 2

    # printing closes at 16:00:00 on the 12th: the unprinted ticket is forfeited, once
    s.clock.set(at(2026, 6, 12, 16, 0, 1))
    s.wait(lambda: counts(s)["forfeited"] == 1)
    assert [e.payload["application_id"] for e in events(s, "ExamForfeited")] == [s.app_id("li")]
    with pytest.raises(Refused) as exc:
        s.call("admission", "download_ticket", s.accounts["wang"], SESSION)
    assert exc.value.fields["window"] == "ticket_printing"

    # V: exam day, at the door of room 101
    s.clock.set(at(2026, 6, 13, 8, 30))
    li = tickets["li"]
    with pytest.raises(Refused) as exc:
        s.call("admission", "check_in", AUTHORITY, {
            "ticket_number": li["ticket_number"], "id_type": "resident_id",
            "id_number": PEOPLE["li"][1], "subject": "L1-LAW"})
    assert exc.value.fields == {"ticket": "forfeited"}
    with pytest.raises(Refused) as exc:  # someone else's document
        s.call("admission", "check_in", AUTHORITY, {
            "ticket_number": wang["ticket_number"], "id_type": "resident_id",
            "id_number": PEOPLE["li"][1], "subject": "L1-LAW"})
    assert exc.value.fields == {"id_number": "does not match the ticket"}
    forged = qr.replace(wang["ticket_number"], li["ticket_number"])
    with pytest.raises(Refused) as exc:
        s.call("admission", "check_in", AUTHORITY, {"qr": forged, "id_type": "resident_id",
                                                    "id_number": id_number, "subject": "L1-LAW"})
    assert exc.value.fields == {"qr": "check value does not match"}
    door = {"qr": qr, "id_type": "resident_id", "id_number": id_number, "subject": "L1-LAW"}
    ok = s.call("admission", "check_in", AUTHORITY, door)
    assert (ok["name"], ok["room"], ok["seat"], ok["subject"]) == (name, "101", wang["seat"], "L1-LAW")
    assert ok["venue"]["name"] == "样例考点一（徐汇）" and not ok["already_checked_in"]
    again = s.call("admission", "check_in", AUTHORITY, door)
    assert again["already_checked_in"] and again["checked_in_at"] == ok["checked_in_at"]
    assert len(events(s, "CandidateCheckedIn")) == 1
    room = s.call("admission", "room_list", AUTHORITY, SESSION, "SH-SAMPLE-01", "101")
    assert [(c["seat"], c["name"], c["checked_in"]) for c in room["candidates"]] == \
        sorted([(wang["seat"], name, ["L1-LAW"]), (li["seat"], "李敏", [])])

    # the day's sittings end: absent exactly where nobody checked in
    s.clock.set(at(2026, 6, 13, 16, 30, 1))
    s.wait(lambda: counts(s)["absent"] == 3)
    absent = {(e.payload["application_id"], e.payload["subject"]) for e in events(s, "CandidateAbsent")}
    assert absent == {(s.app_id("li"), "L1-LAW"), (s.app_id("li"), "L1-DATA"),
                      (s.app_id("wang"), "L1-DATA")}
    assert counts(s) == {"seats_allocated": 2, "tickets_issued": 2, "printed": 1, "forfeited": 1,
                         "checked_in": 1, "absent": 3, "cancelled": 0, "awaiting_seat": 0,
                         "unseated": 0}

    store = s.store("admission")
    projection = next(p for p in store.projections if isinstance(p, AdmissionProjection))
    live = snapshot(store.engine, projection)
    projection.rebuild(store)
    assert snapshot(store.engine, projection) == live
