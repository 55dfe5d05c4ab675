"""疑问核实 over real RabbitMQ and PostgreSQL, with account, registration and verification
running and a controllable clock (the 2026 Shanghai timetable):

- 刘洋 is rejected for good at manual check (报名终止), asks his registration point about it,
  is answered with a reopening during 核对确认, sends proof again, passes the manual check
  and confirms: the application leaves ``terminated``;
- staff of another point are refused, and so are answers outside service hours (naming
  them); a second enquiry while one is open, and one with nothing to question, are refused;
- 陈静's enquiry about a plain rejection is still open when confirmation closes: her
  application ends unsuccessful (报名不成功) and the enquiry is closed; an enquiry after
  the close is refused, naming the window;
- the audit trail lists the staff decisions (who, when, what, why).
"""

import time

import pytest

from shared.errors import Refused, Unauthorized
from shared.session import REFERENCE_SESSION_PATH
from tests.integration.test_application_flow import AUTHORITY, SESSION, STAFF, at, start_season

pytestmark = pytest.mark.integration

OTHER_STAFF = {"staff_id": "staff-77", "registration_point": "3001"}


def enquire(s, key, text="我的学历证书是真实的，请再核实"):
    return s.call("verification", "raise_enquiry", s.accounts[key], {"session_id": SESSION,
                                                                    "text": text})


@pytest.fixture
def season(runner_factory, amqp_uri, databases):
    return start_season(runner_factory, amqp_uri, databases, name="enquiry")


def history_types(s, key):
    return [h["type"] for h in s.app(key)["history"]]


def test_enquiry_reopens_a_terminated_application(season):
    s = season
    s.call("registration", "load_session", {"yaml": REFERENCE_SESSION_PATH.read_text("utf-8")})
    for key in ("liu", "chen", "wang"):
        s.candidate(key)
        s.known_complete(key)
    s.clock.set(at(2026, 4, 7, 10, 0))
    for key in ("liu", "chen", "wang"):
        s.apply(key)
    s.status("wang", "auto_passed")
    s.status("liu", "proof_requested")
    s.status("chen", "proof_requested")

    s.clock.set(at(2026, 4, 8, 10, 0))
    s.proof("liu")
    s.proof("chen")
    s.wait(lambda: len(s.call("verification", "manual_queue", STAFF, SESSION)) == 2)
    s.manual("liu", "reject", reason="学历证书与学信网记录不符", final=True)  # O→P
    s.manual("chen", "reject", reason="工作证明未盖章")
    s.status("liu", "terminated")
    s.status("chen", "manual_rejected")

    # nothing to question for an application that passed
    with pytest.raises(Refused) as exc:
        enquire(s, "wang")
    assert exc.value.error_code == "nothing_to_question"

    s.clock.set(at(2026, 4, 9, 10, 0))
    asked = enquire(s, "liu", "学信网记录是2005年的，证书编号无误\n请再核实")
    assert asked["status"] == "open" and asked["about"] == "ManualCheckRejected"
    assert asked["text"] == "学信网记录是2005年的，证书编号无误\n请再核实"
    with pytest.raises(Refused) as exc:  # one open enquiry at a time
        enquire(s, "liu")
    assert exc.value.fields == {"enquiry_id": asked["enquiry_id"]}
    # the candidate sees it in the application's history; the point sees it in its queue
    s.wait(lambda: "EnquiryRaised" in history_types(s, "liu"))
    assert s.app("liu")["open_enquiry"] == asked["enquiry_id"]
    queue = s.call("verification", "enquiry_queue", STAFF, SESSION)
    assert [q["enquiry_id"] for q in queue] == [asked["enquiry_id"]]
    assert queue[0]["candidate_name"] == "刘洋" and queue[0]["case_status"] == "terminated"
    assert s.call("verification", "enquiry_queue", OTHER_STAFF) == []

    reply = {"enquiry_id": asked["enquiry_id"], "answer": "经复核，证书编号录入有误，请重新提交学历证明",
             "reopen": True}
    with pytest.raises(Unauthorized):  # staff of another point
        s.call("verification", "answer_enquiry", OTHER_STAFF, reply)
    s.clock.set(at(2026, 4, 15, 10, 0))  # the spot check: points do not serve
    with pytest.raises(Refused) as exc:
        s.call("verification", "answer_enquiry", STAFF, reply)
    assert "09:30-11:30, 13:30-16:00" in exc.value.message and exc.value.error_code == "out_of_service"
    s.clock.set(at(2026, 4, 17, 12, 0))  # lunch during confirmation
    with pytest.raises(Refused):
        s.call("verification", "answer_enquiry", STAFF, reply)

    s.clock.set(at(2026, 4, 17, 10, 30))
    answered = s.call("verification", "answer_enquiry", STAFF, reply)
    assert answered["status"] == "answered" and answered["reopened"] is True
    assert answered["staff"] == "staff-01"
    liu = s.status("liu", "proof_requested")  # reopened: terminated no more
    assert "报名点2916在疑问核实后重新开启核查" in liu["reason"] and liu["open_enquiry"] is None
    assert s.call("verification", "enquiry_queue", STAFF, SESSION) == []

    s.clock.set(at(2026, 4, 17, 11, 0))  # verification closed, but a reopening takes proof
    s.proof("liu")
    s.case_status("liu", "awaiting_manual")
    s.manual("liu", "pass", reason="补交学历认证报告，核实无误")  # after the draw: confirmed at once
    s.status("liu", "eligible")
    s.call("registration", "confirm_application", s.accounts["liu"], SESSION)
    assert s.app("liu")["status"] == "confirmed"
    types = history_types(s, "liu")
    path = ["ManualCheckRejected", "RegistrationTerminated", "EnquiryRaised", "EnquiryAnswered",
            "ProofRequested", "ProofSubmitted", "ManualCheckPassed", "EligibilityConfirmed",
            "ApplicationConfirmed"]
    rest = iter(types)
    assert all(step in rest for step in path), types
    assert [e["status"] for e in s.call("verification", "get_enquiries", s.accounts["liu"],
                                        SESSION)] == ["answered"]

    # 陈静 asks shortly before the close and gets no answer in time
    s.clock.set(at(2026, 4, 18, 15, 30))
    chen = enquire(s, "chen", "盖章的工作证明已寄出")
    s.wait(lambda: "EnquiryRaised" in history_types(s, "chen"))
    s.clock.set(at(2026, 4, 18, 16, 0, 1))
    ended = s.status("chen", "terminated")
    assert ended["reason"].startswith("报名不成功")
    assert f"您的疑问（{chen['enquiry_id']}）截止时仍未办结" in ended["reason"]
    s.wait(lambda: s.call("verification", "get_enquiries", s.accounts["chen"], SESSION)[0]["status"]
           == "closed")
    closed = s.call("verification", "get_enquiries", s.accounts["chen"], SESSION)[0]
    assert "报名不成功" in closed["closed_reason"]
    with pytest.raises(Refused) as exc:  # too late: named window, named close
        enquire(s, "chen", "为什么？")
    assert exc.value.fields["window"] == "confirmation"
    assert "2026-04-18 16:00:00" in exc.value.message
    # wang was eligible (passed through) and never confirmed: given up, not unsuccessful
    wang = s.status("wang", "lapsed")
    assert "逾期视为放弃报名" in wang["reason"]
    time.sleep(0.3)  # the close ran once, however often the timers ticked
    ver = s.store("verification")
    closes = [e for e in ver.events_after(0, 10_000) if e.type in ("EnquiryClosed", "DeadlineReached")]
    assert sorted(e.type for e in closes) == ["DeadlineReached", "DeadlineReached", "EnquiryClosed"]

    # who decided what, when and why
    trail = s.call("verification", "audit_trail", AUTHORITY, {"session_id": SESSION})
    mine = [(t["action"], t["staff_id"], t["why"]) for t in trail]
    assert ("enquiry_answer", "staff-01", reply["answer"]) in mine
    assert ("manual_check", "staff-01", "学历证书与学信网记录不符") in mine
    assert trail == sorted(trail, key=lambda t: t["at"], reverse=True)
    only = s.call("verification", "audit_trail", AUTHORITY, {"staff_id": "nobody", "limit": 5})
    assert only == []
