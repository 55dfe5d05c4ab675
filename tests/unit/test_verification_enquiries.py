"""疑问核实 (enquiries) and 报名无效 / 成绩无效 (voiding, the integrity archive) on the
VerificationCase: windows to the second, own case, own point, service hours, reopening,
voiding from every status, and the read model's audit trail."""

from datetime import timedelta

import pytest

from services.verification import domain
from services.verification.projection import VerificationProjection, audit_entry
from services.verification.schemas import REGISTRY, AnswerEnquirySchema, AuditQuerySchema
from shared.errors import Refused, Unauthorized, ValidationFailed
from shared.events import StoredEvent
from shared.projection import Update, Upsert
from shared.session import reference_session
from tests.unit.test_verification_domain import NOW, PDF, POINT, decide, drawn, opened, to_manual

SESSION = reference_session()
CONFIRMATION = SESSION.window("confirmation")
SECOND = timedelta(seconds=1)
HOURS = domain.describe_service(SESSION.points[POINT], SESSION)


def rejected(final=False, **kw):
    s = to_manual(**kw)
    decide(s, False, reason="工作证明缺少单位盖章", final=final)
    return s


def spot_rejected():
    s = drawn()
    s.append(domain.spot_check_decision(s.case, False, "工作经历与社保记录不符", "authority-1", NOW))
    return s


def enquire(s, text="工作证明已盖章，请再核实", now=NOW, account=None, enquiry_id=None):
    case = s.case
    return s.append(domain.raise_enquiry(case, account or case.account_id,
                                         enquiry_id or f"enq-{len(case.enquiries) + 1}", text, now,
                                         CONFIRMATION))


def answer(s, reopen=False, *, point=POINT, in_service=True, enquiry_id=None, text="已核实"):
    case = s.case
    enquiry_id = enquiry_id or (case.open_enquiry or {}).get("enquiry_id", "enq-none")
    return s.append(domain.answer_enquiry(case, enquiry_id, text, reopen, "staff-9", point, NOW,
                                          in_service, HOURS))


# --- raising ------------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "about"), [
    (lambda: rejected(), "ManualCheckRejected"),
    (lambda: rejected(final=True), "ManualCheckRejected"),
    (spot_rejected, "SpotCheckRejected"),
])
def test_an_enquiry_questions_the_rejection_that_stands(make, about):
    s = make()
    status = s.case.status
    ev = enquire(s)[0]
    assert ev.type == "EnquiryRaised"
    assert ev.payload["about"] == about and ev.payload["registration_point"] == POINT
    assert ev.payload["raised_at"] == "2026-04-08T02:00:00+00:00"
    case = s.case
    assert case.status == status  # raising changes nothing about the case yet
    assert case.open_enquiry["enquiry_id"] == "enq-1" and case.open_enquiry["status"] == "open"


@pytest.mark.parametrize("make", [
    lambda: opened(),  # passed the auto check
    lambda: opened(commitment=False),  # waiting for proof, nothing decided
    lambda: to_manual(),  # waiting for the manual check
    lambda: _passed_manually(),
])
def test_nothing_to_question_is_refused_with_the_rule(make):
    with pytest.raises(Refused) as exc:
        enquire(make())
    assert exc.value.error_code == "nothing_to_question"
    assert "rejection" in exc.value.message


def _passed_manually():
    s = to_manual()
    decide(s)  # a pass is not an outcome to question
    return s


def test_new_proof_after_a_rejection_leaves_nothing_to_question():
    s = rejected()
    s.append(domain.proof_received(s.case, [PDF], NOW))
    with pytest.raises(Refused, match="waiting for a manual check"):
        enquire(s)


def test_only_the_candidates_own_case():
    with pytest.raises(Unauthorized) as exc:
        enquire(rejected(), account="someone-else")
    assert exc.value.error_code == "not_yours"


@pytest.mark.parametrize(("now", "ok"), [
    (CONFIRMATION.start - timedelta(days=3), True),  # before confirmation: fine
    (CONFIRMATION.end, True),  # 16:00:00 on the 18th still counts
    (CONFIRMATION.end + SECOND, False),
    (CONFIRMATION.end + timedelta(days=30), False),
])
def test_enquiries_close_with_confirmation_to_the_second(now, ok):
    s = rejected(final=True)
    if ok:
        enquire(s, now=now)
        return
    with pytest.raises(Refused) as exc:
        enquire(s, now=now)
    assert exc.value.fields == {"window": "confirmation", "closes": "2026-04-18T08:00:00+00:00"}
    assert "核对确认" in exc.value.message and "2026-04-18 16:00:00" in exc.value.message
    assert "报名不成功" in exc.value.message


def test_one_open_enquiry_at_a_time():
    s = rejected()
    enquire(s)
    with pytest.raises(Refused) as exc:
        enquire(s)
    assert exc.value.error_code == "enquiry_open" and exc.value.fields == {"enquiry_id": "enq-1"}
    answer(s)  # answered, the rejection stands: another question may follow
    enquire(s, text="仍有疑问")
    assert [e["status"] for e in s.case.enquiries] == ["answered", "open"]


def test_blank_text_is_invalid():
    with pytest.raises(ValidationFailed):
        enquire(rejected(), text="   ")


# --- answering ----------------------------------------------------------------------------


def test_staff_of_another_point_are_refused():
    s = rejected()
    enquire(s)
    with pytest.raises(Unauthorized) as exc:
        answer(s, point="3001")
    assert "staff of point 3001" in exc.value.message and exc.value.error_code == "wrong_point"


def test_outside_service_hours_is_refused_naming_the_hours():
    s = rejected()
    enquire(s)
    with pytest.raises(Refused) as exc:
        answer(s, in_service=False)
    assert exc.value.error_code == "out_of_service"
    assert "09:30-11:30, 13:30-16:00 (Asia/Shanghai)" in exc.value.message
    assert "not during 抽查复核" in exc.value.message
    assert exc.value.fields["service_hours"] == HOURS


def test_describe_service():
    assert HOURS == ("09:30-11:30, 13:30-16:00 (Asia/Shanghai) during 网上报名, 资格核查 and 核对确认, "
                     "not during 抽查复核")


def test_answer_without_reopening_leaves_the_outcome_standing():
    s = rejected(final=True)
    enquire(s)
    evs = answer(s, text="学历证书与学信网记录不符，维持原结论")
    assert [e.type for e in evs] == ["EnquiryAnswered"]
    assert evs[0].payload["reopened"] is False and evs[0].payload["staff"] == "staff-9"
    case = s.case
    assert case.status == "terminated" and case.enquiries[0]["status"] == "answered"
    with pytest.raises(Refused) as exc:  # answered once
        answer(s, enquiry_id="enq-1")
    assert exc.value.error_code == "enquiry_closed"
    with pytest.raises(Refused):
        answer(s, enquiry_id="enq-404")


@pytest.mark.parametrize("make", [lambda: rejected(), lambda: rejected(final=True), spot_rejected])
def test_reopening_sends_the_case_back_to_proof_and_manual_check(make):
    s = make()
    enquire(s)
    evs = answer(s, reopen=True, text="经核实，原盖章单位为下属机构，请补交上级单位证明")
    assert [e.type for e in evs] == ["EnquiryAnswered", "ProofRequested"]
    assert evs[0].payload["reopened"] is True
    assert evs[1].payload["cause"] == "enquiry_reopened" and "2916" in evs[1].payload["reason"]
    case = s.case
    assert case.status == "awaiting_proof" and case.proof_cause == "enquiry_reopened"
    assert not case.final_rejection
    s.append(domain.proof_received(case, [PDF], NOW))
    decide(s, draw_done=True)
    assert s.case.status == "confirmed"


def test_reopening_needs_the_outcome_to_still_stand():
    s = rejected()
    enquire(s)
    s.append(domain.proof_received(s.case, [PDF], NOW))  # the candidate sent new proof anyway
    with pytest.raises(Refused) as exc:
        answer(s, reopen=True)
    assert "answer without reopening" in exc.value.message
    answer(s)  # a plain answer is still possible
    assert s.case.status == "awaiting_manual"


def test_an_enquiry_still_open_when_confirmation_closes_is_closed():
    s = rejected()
    enquire(s)
    evs = s.append(domain.close_enquiry(s.case))
    assert [e.type for e in evs] == ["EnquiryClosed"]
    assert "报名不成功" in evs[0].payload["reason"]
    assert s.case.enquiries[0]["status"] == "closed" and s.case.open_enquiry is None
    assert domain.close_enquiry(s.case) == []
    with pytest.raises(Refused):
        answer(s, enquiry_id="enq-1")


def test_answer_schema():
    assert AnswerEnquirySchema().load({"enquiry_id": "e1", "answer": "第一段\r\n第二段"}) == {
        "enquiry_id": "e1", "answer": "第一段\n第二段", "reopen": False}
    assert "answer" in AnswerEnquirySchema().validate({"enquiry_id": "e1", "answer": "a\x07"})
    assert "reopen" in AnswerEnquirySchema().validate({"enquiry_id": "e1", "answer": "a",
                                                       "reopen": "perhaps"})
    assert "limit" in AuditQuerySchema().validate({"limit": 0})


# --- voiding ------------------------------------------------------------------------------


def _status(name):
    """A case in each status of the chart."""
    match name:
        case "auto_check":
            s = opened()
            s.events = s.events[:1]
            return s
        case "awaiting_proof":
            return opened(commitment=False)
        case "awaiting_manual":
            return to_manual()
        case "manual_rejected":
            return rejected()
        case "passed":
            return opened()
        case "spot_check":
            return drawn()
        case "confirmed":
            s = opened()
            s.append(domain.pass_through(s.case))
            return s
        case "terminated":
            return rejected(final=True)


LIVE = [s for s in domain.STATUSES if s != "voided"]


@pytest.mark.parametrize("status", LIVE)
@pytest.mark.parametrize("integrity", [True, False])
def test_voiding_closes_a_case_in_any_status(status, integrity):
    s = _status(status)
    assert s.case.status == status
    evs = s.append(domain.void_case(s.case, "虚假承诺：工作年限不实", "authority-1", integrity))
    assert [e.type for e in evs] == ["CaseVoided"]
    case = s.case
    assert case.status == "voided" and case.done
    assert case.voided == {"reason": "虚假承诺：工作年限不实", "by": "authority-1",
                           "integrity": integrity}
    # no more decisions on it, by anyone
    for attempt in (lambda c: domain.proof_received(c, [PDF], NOW),
                    lambda c: domain.manual_decision(c, True, "ok", "s", POINT, False, NOW, True),
                    lambda c: domain.spot_check_decision(c, True, "ok", "a", NOW),
                    lambda c: domain.commitment_withdrawn(c, NOW),
                    lambda c: domain.raise_enquiry(c, c.account_id, "e", "?", NOW, CONFIRMATION),
                    lambda c: domain.void_case(c, "again", "a", False)):
        with pytest.raises((Refused, Unauthorized)) as exc:
            attempt(case)
        assert "voided" in exc.value.message or "no commitment" in exc.value.message
    assert domain.pass_through(case) == []
    assert domain.draw_sample([case], 1.0, 1, "d") == ([], {})


def test_voiding_closes_an_open_enquiry():
    s = rejected()
    enquire(s)
    ev = s.append(domain.void_case(s.case, "虚假承诺", "authority-1", True))[0]
    assert ev.payload["enquiry_id"] == "enq-1"
    assert s.case.enquiries[0]["status"] == "closed"
    with pytest.raises(Refused):
        answer(s, enquiry_id="enq-1")
    assert domain.close_enquiry(s.case) == []


def _voided_payload(s, integrity=True):
    case = s.case
    return {"application_id": case.application_id, "account_id": case.account_id,
            "session_id": case.session_id, "reason": "虚假承诺", "by": "authority-1",
            "integrity": integrity, "voided_at": NOW.isoformat(),
            "candidate": {k: case.candidate[k] for k in ("name", "id_type", "id_number")}}


def test_registration_voided_writes_the_integrity_record_once():
    s = opened()
    payload = _voided_payload(s)
    payload["candidate"]["id_number"] = " 31010419880512345x "
    evs = domain.registration_voided(s.case, payload, NOW, record_exists=False)
    assert [e.type for e in evs] == ["CaseVoided", "IntegrityRecordWritten"]
    record = evs[1]
    REGISTRY.validate(record.type, record.payload)
    assert record.payload["id_number"] == "31010419880512345X"
    assert record.payload["source"] == f"RegistrationVoided {s.case.application_id}"
    assert record.stream_id == domain.integrity_stream(record.payload["record_id"])
    assert "报名无效" in record.payload["reason"]
    again = domain.registration_voided(s.case, payload, NOW, record_exists=True)
    assert [e.type for e in again] == ["CaseVoided"]
    assert [e.type for e in domain.registration_voided(None, payload, NOW, False)] == \
        ["IntegrityRecordWritten"]
    assert [e.type for e in domain.registration_voided(s.case, _voided_payload(s, False), NOW,
                                                       False)] == ["CaseVoided"]


def test_scores_voided_writes_the_record_from_the_case():
    s = opened()
    s.append(domain.pass_through(s.case))
    payload = {**_voided_payload(s), "reason": "考试作弊"}
    del payload["candidate"], payload["voided_at"]
    evs = domain.scores_voided(s.case, payload, NOW, record_exists=False)
    assert [e.type for e in evs] == ["ScoresVoidedRecorded", "IntegrityRecordWritten"]
    s.append(evs[:1])  # the record has a stream of its own
    REGISTRY.validate(evs[1].type, evs[1].payload)
    record = evs[1].payload
    assert record["id_number"] == s.case.candidate["id_number"]
    assert record["source"] == f"ScoresVoided {s.case.application_id}" and "成绩无效" in record["reason"]
    assert s.case.status == "confirmed"  # verification's outcome stands; the scores do not
    assert domain.scores_voided(s.case, payload, NOW, record_exists=True) == []
    assert domain.scores_voided(s.case, {**payload, "integrity": False}, NOW, False) == []
    with pytest.raises(Refused, match="no verification case"):
        domain.scores_voided(None, payload, NOW, False)


def test_record_ids_are_one_per_source():
    a = domain.integrity_record_id("RegistrationVoided s.a")
    assert a == domain.integrity_record_id("RegistrationVoided s.a")
    assert a != domain.integrity_record_id("ScoresVoided s.a")
    assert a.startswith("IR-") and len(a) == 23


# --- the fold keeps to the chart -------------------------------------------------------------


def test_fold_refuses_enquiry_edges_the_chart_does_not_have():
    s = rejected()
    enquire(s)
    raised = s.events[-1]
    with pytest.raises(ValueError, match="while enquiry enq-1 is open"):
        domain.fold([*s.events, raised])
    answered = domain.answer_enquiry(s.case, "enq-1", "ok", False, "s", POINT, NOW, True)[0]
    with pytest.raises(ValueError, match="is not open"):
        domain.fold([*s.events, answered, answered])
    voided = domain.void_case(s.case, "r", "a", False)
    s.append(voided)
    with pytest.raises(ValueError, match="cannot follow status 'voided'"):
        domain.fold([*s.events, *domain.proof_received(rejected().case, [PDF], NOW)])


# --- the read model -----------------------------------------------------------------------


def _stored(events):
    return [StoredEvent(i + 1, e.stream_id, i + 1, e.type, 1, e.payload,
                        {"occurred_at": "2026-04-08T02:00:00+00:00", "event_id": f"ev{i}"})
            for i, e in enumerate(events)]


def test_audit_trail_records_who_when_what_why():
    s = rejected(final=True)
    enquire(s)
    answer(s, reopen=True, text="请补交材料")
    s.append(domain.void_case(s.case, "虚假承诺", "authority-1", True))
    entries = [audit_entry(e) for e in _stored(s.events)]
    decisions = [e for e in entries if e]
    assert [(e["action"], e["staff_id"]) for e in decisions] == [
        ("manual_check", "staff-7"), ("enquiry_answer", "staff-9"),
        ("registration_voided", "authority-1")]
    manual, answered, voided = decisions
    assert manual["what"] == "manual check rejected, final (报名终止)"
    assert manual["why"] == "工作证明缺少单位盖章" and manual["registration_point"] == POINT
    assert answered["what"] == "answered enquiry enq-1, case reopened" and answered["why"] == "请补交材料"
    assert voided["why"] == "虚假承诺" and "integrity" in voided["what"]
    assert all(e["at"] == "2026-04-08T02:00:00+00:00" for e in decisions)


def test_projection_of_an_enquiry_and_a_record():
    s = rejected()
    enquire(s)
    answer(s, reopen=True)
    payload = _voided_payload(s)
    s.append(domain.registration_voided(s.case, payload, NOW, False)[:1])
    record = domain.registration_voided(None, payload, NOW, False)
    changes = [c for e in _stored([*s.events, *record]) for c in VerificationProjection().handle(e)]
    enquiry_rows = [c for c in changes if c.table == "enquiries"]
    assert isinstance(enquiry_rows[0], Upsert) and enquiry_rows[0].values["status"] == "open"
    assert isinstance(enquiry_rows[1], Update) and enquiry_rows[1].values["reopened"] is True
    cases = [c.values.get("status") for c in changes if c.table == "cases"]
    assert cases[-3:] == [None, "awaiting_proof", "voided"]  # answered, reopened, voided
    (row,) = [c for c in changes if c.table == "integrity_records"]
    assert row.values["id_number"] == payload["candidate"]["id_number"]
