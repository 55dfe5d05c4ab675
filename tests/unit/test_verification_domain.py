from datetime import date, datetime, timedelta

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from services.verification import domain
from services.verification.domain import case_stream, fold
from services.verification.rules import load_rules
from services.verification.schemas import (
    REGISTRY,
    ManualDecisionSchema,
    SpotCheckDecisionSchema,
    SpotCheckDrawSchema,
    StaffSchema,
)
from shared.clock import SHANGHAI
from shared.errors import KaowuError, Refused, Unauthorized, ValidationFailed
from shared.events import NewEvent, StoredEvent

NOW = datetime(2026, 4, 8, 10, 0, tzinfo=SHANGHAI)
CUTOFF = date(2026, 12, 31)
RULES = load_rules(2026)
POINT = "2916"
CERT = "102471201005001234"
BACHELOR = {
    "entry_id": "e1",
    "level": "本科",
    "school": "同济大学",
    "major": "测控技术与仪器",
    "major_category": "science_engineering",
    "graduated_on": "2010-07-01",
    "certificate_no": CERT,
}
JOB = {
    "entry_id": "w1",
    "employer": "上海市计量测试技术研究院",
    "position": "检定员",
    "start": "2012-08-01",
    "end": None,
    "metrology": True,
}
REGISTRY_RECORD = {"level": "本科", "major": "测控技术与仪器",
                   "major_category": "science_engineering", "graduated_on": "2010-07-01"}
CLEAN = {"integrity": None, "education": {CERT: REGISTRY_RECORD}}
LIVE_RECORD = {"record_id": "CX-2024-0031", "reason": "考试违纪", "recorded_on": "2024-06-15",
               "expires_on": "2027-06-14"}
PDF = {"sha256": "a" * 64, "name": "工作证明.pdf", "content_type": "application/pdf",
       "size": 120_000}


def submitted(app="app-1", *, commitment=True, exemption=None, level="L1", education=None,
              work=None):
    return {
        "application_id": app,
        "account_id": f"acc-{app}",
        "session_id": "2026-shanghai",
        "level": level,
        "subjects": ["计量法律法规及综合知识", "测量数据处理与计量专业实务", "计量专业案例分析"],
        "exemption": exemption,
        "registration_point": POINT,
        "commitment": {"pledge_version": "2026.1", "signed_name": "王建国",
                       "signed_at": "2026-04-07T10:05:00+08:00"} if commitment else None,
        "candidate": {
            "name": "王建国",
            "id_type": "resident_id",
            "id_number": "310104198805123455",
            "education": [BACHELOR] if education is None else education,
            "degrees": [],
            "work": [JOB] if work is None else work,
            "titles": [],
        },
        "submitted_at": "2026-04-07T10:05:00+08:00",
    }


class Stream:
    """An in-memory case stream: validates what the domain emits (as the store does), folds."""

    def __init__(self, events=()):
        self.events = []
        self.append(events)

    def append(self, events):
        for e in events:
            REGISTRY.validate(e.type, e.payload)
            assert e.stream_id == case_stream(e.payload["application_id"])
            self.events.append(e)
        return events

    @property
    def case(self):
        return fold(self.events)

    @property
    def types(self):
        return [e.type for e in self.events]


def opened(**kw):
    facts = kw.pop("facts", CLEAN)
    payload = submitted(**kw)
    REGISTRY.validate("ApplicationSubmitted", payload)
    return Stream(domain.open_case(payload, RULES, facts, CUTOFF, NOW))


def decide(stream, passed=True, *, reason="materials verified", point=POINT, final=False,
           in_service=True, draw_done=False):
    return stream.append(domain.manual_decision(
        stream.case, passed, reason, "staff-7", point, final, NOW, in_service, draw_done))


def to_manual(**kw):
    s = opened(commitment=False, **kw)
    s.append(domain.proof_received(s.case, [PDF], NOW))
    return s


# --- open_case ------------------------------------------------------------------------


def test_commitment_and_clean_facts_pass_the_auto_check():
    s = opened()
    assert s.types == ["CaseOpened", "AutoCheckPassed"]
    opened_ev, passed = s.events
    assert opened_ev.payload["commitment"] is True
    assert opened_ev.payload["registration_point"] == POINT
    assert passed.payload["rule"] == "2026.L1.本科.science_engineering"
    assert "需从事计量技术工作满3年" in passed.payload["reason"]
    case = s.case
    assert (case.status, case.passed_via, case.version) == ("passed", "auto", 2)
    assert case.auto_check["passed"] is True


def assert_sent_to_proof(s, rule, cause="auto_check_failed"):
    assert s.types == ["CaseOpened", "AutoCheckFailed", "ProofRequested"]
    failed, requested = s.events[1:]
    assert failed.payload["rule"] == rule
    assert requested.payload == {**{k: failed.payload[k] for k in domain._IDS},
                                 "cause": cause, "reason": failed.payload["reason"]}
    assert s.case.status == "awaiting_proof"
    assert s.case.proof_cause == cause
    return failed.payload["reason"]


def test_live_integrity_record_fails_the_auto_check():
    reason = assert_sent_to_proof(opened(facts={**CLEAN, "integrity": LIVE_RECORD}),
                                  "integrity.live-record")
    assert "CX-2024-0031" in reason and "诚信档案" in reason


@pytest.mark.parametrize(
    ("registry", "says"),
    [
        (None, "没有您名下本科学历证书"),
        ({**REGISTRY_RECORD, "level": "大专"}, "为大专，不是本科"),
        ({**REGISTRY_RECORD, "major_category": "other"}, "专业类别为其他专业，不是理工类专业"),
    ],
)
def test_unconfirmed_certificate_fails_the_auto_check(registry, says):
    reason = assert_sent_to_proof(opened(facts={"integrity": None, "education": {CERT: registry}}),
                                  "education.unverified")
    assert CERT in reason and says in reason


def test_certificate_never_looked_up_counts_as_unconfirmed():
    assert_sent_to_proof(opened(facts={"integrity": None, "education": {}}),
                         "education.unverified")


@pytest.mark.parametrize("blank", [None, "", "   ", "absent"])
def test_an_entry_without_certificate_number_is_unconfirmed_and_goes_to_proof(blank):
    """Issue 17 item 4: nothing to look up is nothing confirmed: proof and the manual check,
    never a pass on years alone (the work here is 14 years, plenty)."""
    no_cert = {k: v for k, v in BACHELOR.items() if k != "certificate_no"}
    if blank != "absent":
        no_cert["certificate_no"] = blank
    s = opened(education=[no_cert], facts={"integrity": None, "education": {}})
    reason = assert_sent_to_proof(s, "education.unverified")
    assert reason == ("学历未经学信网核验：本科学历（同济大学）没有填写证书编号，无法查询。"
                      "请提交学历证书等证明材料，由报名点人工核查。[规则 education.unverified]")


def test_one_unconfirmed_entry_beside_a_confirmed_one_still_goes_to_proof():
    no_cert = {**BACHELOR, "entry_id": "e2", "level": "硕士", "certificate_no": None}
    s = opened(education=[BACHELOR, no_cert])
    reason = assert_sent_to_proof(s, "education.unverified")
    assert "硕士学历" in reason and "没有填写证书编号" in reason


def test_ineligible_candidate_fails_with_the_rule_row():
    reason = assert_sent_to_proof(opened(work=[{**JOB, "start": "2024-01-02"}]),
                                  "2026.L1.本科.science_engineering")
    assert "现有2年11个月。" in reason
    # 截至12月31日 includes the day: three whole years from 2024-01-01
    assert opened(work=[{**JOB, "start": "2024-01-01"}]).types == ["CaseOpened", "AutoCheckPassed"]
    s = opened(education=[{**BACHELOR, "level": "中专"}],
               facts={"integrity": None, "education": {CERT: {**REGISTRY_RECORD, "level": "中专"}}})
    assert_sent_to_proof(s, "2026.L1.no-qualifying-education")


def test_eligible_at_level_2():
    s = opened(level="L2", work=[{**JOB, "start": "2026-01-01"}])
    assert s.types == ["CaseOpened", "AutoCheckPassed"]
    assert s.events[1].payload["rule"] == "2026.L2.本科.any"


def test_no_commitment_requests_proof():
    s = opened(commitment=False, facts={"integrity": LIVE_RECORD, "education": {}})
    assert s.types == ["CaseOpened", "ProofRequested"]
    assert s.events[0].payload["commitment"] is False
    assert s.events[1].payload["cause"] == "no_commitment"
    assert s.case.status == "awaiting_proof" and s.case.auto_check is None


@pytest.mark.parametrize("commitment", [True, False])
def test_exemption_always_requests_proof_and_runs_nothing_automatic(commitment):
    exemption = {"subject": "计量法律法规及综合知识", "ground": "senior_title"}
    s = opened(commitment=commitment, exemption=exemption)
    assert s.types == ["CaseOpened", "ProofRequested"]
    assert s.events[0].payload["exemption"] == exemption
    assert s.events[1].payload["cause"] == "exemption_claimed"
    assert "计量法律法规及综合知识" in s.events[1].payload["reason"]
    assert s.case.exemption == exemption and s.case.commitment is commitment


def test_now_must_be_aware():
    with pytest.raises(ValueError, match="aware"):
        domain.open_case(submitted(), RULES, CLEAN, CUTOFF, datetime(2026, 4, 8, 10, 0))


# --- commitment withdrawn ---------------------------------------------------------------


def test_withdrawing_a_passed_commitment_requests_proof():
    s = opened()
    s.append(domain.commitment_withdrawn(s.case, NOW))
    assert s.types[-2:] == ["CommitmentWithdrawnRecorded", "ProofRequested"]
    assert s.events[-1].payload["cause"] == "commitment_withdrawn"
    case = s.case
    assert case.status == "awaiting_proof" and case.commitment is False
    assert case.passed_via is None


def test_withdrawing_when_not_possible_is_refused():
    with pytest.raises(Refused, match="no commitment"):
        domain.commitment_withdrawn(opened(commitment=False).case, NOW)
    failed = opened(facts={**CLEAN, "integrity": LIVE_RECORD})
    with pytest.raises(Refused, match="waiting for the candidate's proof"):
        domain.commitment_withdrawn(failed.case, NOW)
    drawn = opened()
    drawn.append(domain.draw_sample([drawn.case], 1.0, 1, "d1")[1]["app-1"])
    with pytest.raises(Refused, match="spot check"):
        domain.commitment_withdrawn(drawn.case, NOW)
    done = opened()
    done.append(domain.pass_through(done.case))
    with pytest.raises(Refused, match="already confirmed"):
        domain.commitment_withdrawn(done.case, NOW)


def test_withdrawing_after_a_manual_pass_is_refused():
    s = opened(facts={**CLEAN, "integrity": LIVE_RECORD})
    s.append(domain.proof_received(s.case, [PDF], NOW))
    decide(s)
    assert s.case.status == "passed" and s.case.commitment
    with pytest.raises(Refused, match="manual check"):
        domain.commitment_withdrawn(s.case, NOW)


# --- proof and manual check ---------------------------------------------------------------


def test_proof_goes_to_the_manual_check():
    s = to_manual()
    assert s.types[-1] == "ProofReceived"
    case = s.case
    assert case.status == "awaiting_manual"
    assert case.proof_rounds == [domain.ProofRound(files=[PDF])]


def test_proof_when_not_expected_is_refused():
    with pytest.raises(Refused, match="cannot accept proof"):
        domain.proof_received(opened().case, [PDF], NOW)
    with pytest.raises(Refused, match="waiting for a manual check"):
        domain.proof_received(to_manual().case, [PDF], NOW)
    with pytest.raises(ValidationFailed):
        domain.proof_received(opened(commitment=False).case, [], NOW)


def test_manual_pass_before_the_draw_waits_for_it():
    s = to_manual()
    decide(s, reason="工作证明与学历证书核验无误")
    ev = s.events[-1]
    assert ev.type == "ManualCheckPassed"
    assert ev.payload["staff"] == "staff-7" and ev.payload["registration_point"] == POINT
    case = s.case
    assert (case.status, case.passed_via) == ("passed", "manual")
    assert case.proof_rounds[-1].decision == "passed"


def test_manual_pass_after_the_draw_is_confirmed_at_once():
    s = to_manual()
    decide(s, draw_done=True)
    assert s.types[-2:] == ["ManualCheckPassed", "EligibilityConfirmed"]
    assert s.events[-1].payload["via"] == "manual"
    assert s.events[-1].payload["spot_checked"] is False
    assert s.case.status == "confirmed"


def test_wrong_point_is_unauthorized():
    s = to_manual()
    with pytest.raises(Unauthorized, match="staff of point 3001 cannot decide cases of point 2916"):
        decide(s, point="3001")


def test_outside_service_hours_is_refused():
    with pytest.raises(Refused, match="outside the registration point's service hours"):
        decide(to_manual(), in_service=False)


def test_manual_decision_only_on_a_case_waiting_for_it():
    with pytest.raises(Refused, match="cannot decide a manual check"):
        decide(opened())
    with pytest.raises(Refused):
        decide(opened(commitment=False))


def test_rejection_needs_a_reason():
    with pytest.raises(ValidationFailed):
        decide(to_manual(), False, reason="  ")


def test_rejected_then_proof_again_then_pass():
    s = to_manual()
    decide(s, False, reason="工作证明缺少单位盖章")
    assert s.events[-1].payload["final"] is False
    assert s.case.status == "manual_rejected"
    s.append(domain.proof_received(s.case, [{**PDF, "sha256": "b" * 64}], NOW))
    assert s.case.status == "awaiting_manual"
    decide(s)
    case = s.case
    assert case.status == "passed"
    assert [r.decision for r in case.proof_rounds] == ["rejected", "passed"]


def test_final_rejection_terminates_and_refuses_more_proof():
    s = to_manual()
    decide(s, False, reason="学历证书系伪造", final=True)
    case = s.case
    assert case.status == "terminated" and case.final_rejection and case.done
    with pytest.raises(Refused, match="finally rejected"):
        domain.proof_received(case, [PDF], NOW)
    with pytest.raises(Refused):
        decide(s)


# --- spot check draw ---------------------------------------------------------------------


def passed_cases(n, start=0):
    return [opened(app=f"app-{i:03d}").case for i in range(start, start + n)]


def test_draw_is_reproducible_and_depends_on_the_seed():
    cases = passed_cases(40)
    first = domain.draw_sample(cases, 0.2, 12345, "draw-1")
    again = domain.draw_sample(list(reversed(cases)), 0.2, 12345, "draw-1")
    assert first == again
    selected, events = first
    assert len(selected) == 8 and selected == sorted(selected)
    other = domain.draw_sample(cases, 0.2, 54321, "draw-1")[0]
    assert other != selected
    for app, evs in events.items():
        for ev in evs:
            REGISTRY.validate(ev.type, ev.payload)
        if app in selected:
            assert [e.type for e in evs] == ["SpotCheckSelected"]
            assert evs[0].payload == {**evs[0].payload, "draw_id": "draw-1", "seed": 12345,
                                      "rate": 0.2}
        else:
            assert [e.type for e in evs] == ["EligibilityConfirmed"]
            assert evs[0].payload["via"] == "auto" and evs[0].payload["spot_checked"] is False


@pytest.mark.parametrize(
    ("rate", "n", "k"),
    [(0.0, 10, 0), (0.001, 10, 1), (0.05, 10, 1), (0.25, 10, 2), (0.35, 10, 4), (1.0, 10, 10),
     (0.5, 0, 0), (1.0, 1, 1)],
)
def test_sample_size(rate, n, k):
    assert domain.sample_size(rate, n) == k
    selected, events = domain.draw_sample(passed_cases(n), rate, 7, "d")
    assert len(selected) == k and len(events) == n


@pytest.mark.parametrize("rate", [-0.1, 1.01])
def test_rate_out_of_range_is_invalid(rate):
    with pytest.raises(ValidationFailed):
        domain.draw_sample(passed_cases(3), rate, 7, "d")


def test_only_passed_cases_are_drawn():
    waiting = opened(app="app-w", commitment=False).case
    manual = to_manual(app="app-m")
    decide(manual)  # manual pass before the draw: `passed` via manual
    confirmed = opened(app="app-c")
    confirmed.append(domain.pass_through(confirmed.case))
    cases = [waiting, manual.case, confirmed.case, *passed_cases(2)]
    selected, events = domain.draw_sample(cases, 1.0, 1, "d")
    assert selected == ["app-000", "app-001", "app-m"]
    assert set(events) == set(selected)
    selected, events = domain.draw_sample(cases, 0.0, 1, "d")
    assert selected == []
    assert events["app-m"][0].payload["via"] == "manual"
    assert "app-w" not in events and "app-c" not in events


def test_a_draw_never_mixes_sessions():
    a = opened(app="a").case
    b = opened(app="b").case
    b.session_id = "2027-shanghai"
    with pytest.raises(ValueError, match="sessions"):
        domain.draw_sample([a, b], 0.5, 1, "d")


# --- spot check decisions -----------------------------------------------------------------


def drawn(**kw):
    s = opened(**kw)
    s.append(domain.draw_sample([s.case], 1.0, 99, "draw-9")[1][s.case.application_id])
    assert s.case.status == "spot_check"
    return s


def test_spot_check_pass_confirms():
    s = drawn()
    s.append(domain.spot_check_decision(s.case, True, "", "authority-1", NOW))
    assert s.types[-2:] == ["SpotCheckPassed", "EligibilityConfirmed"]
    assert s.events[-1].payload == {**s.events[-1].payload, "via": "auto", "spot_checked": True}
    case = s.case
    assert case.status == "confirmed" and case.spot_checked and case.draw["draw_id"] == "draw-9"


def test_spot_check_reject_goes_back_through_proof_and_manual_check():
    s = drawn()
    s.append(domain.spot_check_decision(s.case, False, "工作年限与社保记录不符", "authority-1", NOW))
    assert s.types[-2:] == ["SpotCheckRejected", "ProofRequested"]
    assert s.events[-1].payload["cause"] == "spot_check_rejected"
    assert s.events[-1].payload["reason"] == "工作年限与社保记录不符"
    assert s.case.status == "awaiting_proof" and s.case.spot_check_rejected
    s.append(domain.proof_received(s.case, [PDF], NOW))
    decide(s)  # draw_done not even needed: it came back through the spot check
    assert s.types[-2:] == ["ManualCheckPassed", "EligibilityConfirmed"]
    assert s.events[-1].payload["via"] == "manual"
    assert s.events[-1].payload["spot_checked"] is True
    assert s.case.status == "confirmed"


def test_spot_check_decision_only_on_a_drawn_case():
    with pytest.raises(Refused, match="cannot decide a spot check"):
        domain.spot_check_decision(opened().case, True, "ok", "authority-1", NOW)
    with pytest.raises(ValidationFailed):
        domain.spot_check_decision(drawn().case, False, "", "authority-1", NOW)


def test_pass_through():
    s = opened()
    evs = s.append(domain.pass_through(s.case))
    assert [e.type for e in evs] == ["EligibilityConfirmed"]
    assert evs[0].payload["spot_checked"] is False and evs[0].payload["via"] == "auto"
    assert s.case.status == "confirmed"
    assert domain.pass_through(s.case) == []
    assert domain.pass_through(drawn().case) == []
    assert domain.pass_through(opened(commitment=False).case) == []
    manual = to_manual()
    decide(manual)
    assert domain.pass_through(manual.case)[0].payload["via"] == "manual"


# --- fold -------------------------------------------------------------------------------


def test_fold_of_stored_events_keeps_versions_and_times():
    s = opened()
    stored = [
        StoredEvent(position=10 + i, stream_id=e.stream_id, stream_version=i + 1, type=e.type,
                    schema_version=1, payload=e.payload,
                    metadata={"occurred_at": f"2026-04-07T02:0{i}:00+00:00"})
        for i, e in enumerate(s.events)
    ]
    case = fold(stored)
    assert case.version == 2
    assert [(h["type"], h["at"]) for h in case.history] == [
        ("CaseOpened", "2026-04-07T02:00:00+00:00"),
        ("AutoCheckPassed", "2026-04-07T02:01:00+00:00"),
    ]
    assert "candidate" not in case.history[0]  # personal data stays out of the history
    assert case.history[1]["rule"] == "2026.L1.本科.science_engineering"
    assert fold([]) is None


def test_fold_refuses_edges_the_chart_does_not_have():
    s = opened(commitment=False)  # awaiting proof: no manual decision without proof first
    payload = {**s.events[0].payload}
    ids = {k: payload[k] for k in domain._IDS}
    skip = NewEvent(s.events[0].stream_id, "ManualCheckPassed",
                    {**ids, "registration_point": POINT, "staff": "x", "reason": "r"})
    REGISTRY.validate(skip.type, skip.payload)
    with pytest.raises(ValueError, match="cannot follow status 'awaiting_proof'"):
        fold([*s.events, skip])
    with pytest.raises(ValueError, match="precedes CaseOpened"):
        fold(s.events[1:])
    with pytest.raises(ValueError, match="twice"):
        fold([s.events[0], s.events[0]])
    # a withdrawal must be followed by its ProofRequested
    w = opened()
    withdrawal = domain.commitment_withdrawn(w.case, NOW)
    with pytest.raises(ValueError, match="must be followed by ProofRequested"):
        fold([*w.events, withdrawal[0], *domain.pass_through(w.case)])


def test_unknown_event_types_are_skipped():
    s = opened()
    later = NewEvent(s.events[0].stream_id, "SomethingNew", {"x": 1})
    case = fold([*s.events, later])
    assert case.status == "passed" and case.version == 3


# --- the chart, by random walks -----------------------------------------------------------

# (status before, event type, status after): the seed chart's edges I…S, as statuses
EDGES = {
    (None, "CaseOpened", "auto_check"),
    ("auto_check", "AutoCheckPassed", "passed"),  # I → J
    ("auto_check", "AutoCheckFailed", "auto_check"),  # I → K (ProofRequested follows)
    ("auto_check", "ProofRequested", "awaiting_proof"),  # K/H → L
    ("auto_check", "CommitmentWithdrawnRecorded", "auto_check"),
    ("passed", "CommitmentWithdrawnRecorded", "passed"),
    ("passed", "ProofRequested", "awaiting_proof"),  # withdrawn commitment → L
    ("awaiting_proof", "ProofReceived", "awaiting_manual"),  # L → M
    ("manual_rejected", "ProofReceived", "awaiting_manual"),
    ("awaiting_manual", "ManualCheckPassed", "passed"),  # M → N
    ("awaiting_manual", "ManualCheckRejected", "manual_rejected"),  # M → O
    ("awaiting_manual", "ManualCheckRejected", "terminated"),  # O → P
    ("passed", "SpotCheckSelected", "spot_check"),  # J/N → Q
    ("passed", "EligibilityConfirmed", "confirmed"),  # not sampled ⇒ passes through
    ("spot_check", "SpotCheckPassed", "spot_check"),  # Q → R
    ("spot_check", "EligibilityConfirmed", "confirmed"),  # R → T
    ("spot_check", "SpotCheckRejected", "spot_check"),  # Q → S
    ("spot_check", "ProofRequested", "awaiting_proof"),  # S → L
    # 疑问核实: an enquiry about a rejection that stands; an answer may reopen the case
    ("manual_rejected", "EnquiryRaised", "manual_rejected"),
    ("terminated", "EnquiryRaised", "terminated"),
    ("awaiting_proof", "EnquiryRaised", "awaiting_proof"),
    *((s, "EnquiryAnswered", s) for s in domain.STATUSES if s != "voided"),
    ("manual_rejected", "ProofRequested", "awaiting_proof"),
    ("terminated", "ProofRequested", "awaiting_proof"),
    ("awaiting_proof", "ProofRequested", "awaiting_proof"),
    # 报名无效: from anywhere, for good
    *((s, "CaseVoided", "voided") for s in domain.STATUSES if s != "voided"),
}

OPS = ("withdraw", "proof", "manual_pass", "manual_reject", "manual_final", "draw", "spot_pass",
       "spot_reject", "pass_through", "wrong_point", "enquire", "enquire_late", "enquire_other",
       "answer", "answer_reopen", "answer_wrong_point", "void")
CONFIRMATION = domain.Window("confirmation", datetime(2026, 4, 17, 10, 0, tzinfo=SHANGHAI),
                             datetime(2026, 4, 18, 16, 0, tzinfo=SHANGHAI))


def run(op, case, data, ctx):
    ctx["in_service"] = True
    if op == "withdraw":
        return domain.commitment_withdrawn(case, NOW)
    if op == "proof":
        return domain.proof_received(case, [PDF], NOW)
    if op.startswith("manual"):
        ctx["in_service"] = data.draw(st.sampled_from([True, True, False]), label="in_service")
        return domain.manual_decision(case, op == "manual_pass", "查验", "staff-1", POINT,
                                      op == "manual_final", NOW, ctx["in_service"],
                                      data.draw(st.sampled_from([False, False, True]),
                                                label="draw_done"))
    if op == "wrong_point":
        return domain.manual_decision(case, True, "x", "s", "0001", False, NOW, True)
    if op == "draw":
        rate = data.draw(st.floats(0, 1))
        return domain.draw_sample([case], rate, data.draw(st.integers(0, 2**31 - 1)),
                                  "d").__getitem__(1).get(case.application_id, [])
    if op.startswith("spot"):
        return domain.spot_check_decision(case, op == "spot_pass", "复核", "authority", NOW)
    if op.startswith("enquire"):
        now = CONFIRMATION.end + timedelta(seconds=1) if op == "enquire_late" else NOW
        who = "someone-else" if op == "enquire_other" else case.account_id
        return domain.raise_enquiry(case, who, f"enq-{len(case.enquiries)}", "请再核实", now,
                                    CONFIRMATION)
    if op.startswith("answer"):
        ctx["in_service"] = data.draw(st.sampled_from([True, True, False]), label="in_service")
        open_ = case.open_enquiry
        return domain.answer_enquiry(case, open_["enquiry_id"] if open_ else "enq-none", "已核实",
                                     op == "answer_reopen", "staff-2",
                                     "0001" if op == "answer_wrong_point" else POINT, NOW,
                                     ctx["in_service"])
    if op == "void":
        return domain.void_case(case, "虚假承诺", "authority", data.draw(st.booleans()))
    return domain.pass_through(case)


def allowed(op, case, ctx):
    if not ctx["in_service"]:
        return False  # only manual decisions and answers depend on service hours
    match op:
        case "enquire":
            return (case.status != "voided" and case.open_enquiry is None
                    and domain.questionable(case) is not None)
        case "answer":
            return case.status != "voided" and case.open_enquiry is not None
        case "answer_reopen":
            return (case.status != "voided" and case.open_enquiry is not None
                    and domain.questionable(case) is not None)
        case "void":
            return case.status != "voided"
        case "enquire_late" | "enquire_other" | "answer_wrong_point":
            return False
        case "withdraw":
            return (case.commitment and case.status in ("auto_check", "passed")
                    and case.passed_via != "manual")
        case "proof":
            return case.status in ("awaiting_proof", "manual_rejected")
        case "manual_pass" | "manual_reject" | "manual_final":
            return case.status == "awaiting_manual"
        case "spot_pass" | "spot_reject":
            return case.status == "spot_check"
        case "wrong_point":
            return False
    return True  # draw and pass_through never refuse; they may do nothing


@settings(max_examples=500, deadline=None)
@given(
    commitment=st.booleans(),
    exemption=st.booleans(),
    integrity=st.booleans(),
    eligible=st.booleans(),
    steps=st.integers(0, 20),
    data=st.data(),
)
def test_random_walks_stay_on_the_chart(commitment, exemption, integrity, eligible, steps, data):
    s = opened(
        commitment=commitment,
        exemption={"subject": "计量法律法规及综合知识", "ground": "senior_title"} if exemption else None,
        work=[JOB if eligible else {**JOB, "start": "2026-01-01"}],
        facts={**CLEAN, "integrity": LIVE_RECORD if integrity else None},
    )
    for _ in range(steps):
        case = s.case
        # mostly an operation the case allows (to get deep into the chart), sometimes any
        useful = [o for o in OPS if allowed(o, case, {"in_service": True}) and o != "void"
                  and (o not in ("draw", "pass_through") or case.status == "passed")] or OPS
        op = data.draw(st.sampled_from(useful) | st.sampled_from(OPS), label="op")
        before = len(s.events)
        ctx = {}
        try:
            s.append(run(op, case, data, ctx))
        except KaowuError:
            assert not allowed(op, case, ctx), (op, case.status)
            assert len(s.events) == before
            continue
        assert allowed(op, case, ctx), (op, case.status)
        if case.status == "voided":
            assert len(s.events) == before  # nothing happens to a voided case
        elif case.status == "confirmed":  # but voiding it, or answering an earlier enquiry
            assert {e.type for e in s.events[before:]} <= {"CaseVoided", "EnquiryAnswered"}
        elif case.done:  # terminated: only an enquiry's answer reopens it (or voiding ends it)
            assert {e.type for e in s.events[before:]} <= {
                "EnquiryRaised", "EnquiryAnswered", "ProofRequested", "CaseVoided"}

    # every event moved the case along an edge of the chart
    status = None
    for i, ev in enumerate(s.events):
        after = fold(s.events[: i + 1]).status
        assert (status, ev.type, after) in EDGES, (status, ev.type, after)
        status = after

    # and the fold says what the events say
    case = s.case
    event(f"ends {case.status}")
    for t in ("SpotCheckRejected", "SpotCheckPassed", "CommitmentWithdrawnRecorded",
              "EnquiryRaised", "EnquiryAnswered", "CaseVoided"):
        if t in s.types:
            event(f"saw {t}")
    if any(e.type == "EnquiryAnswered" and e.payload["reopened"] for e in s.events):
        event("saw a reopening")
    types = s.types
    assert case.version == len(types)
    assert len(case.proof_rounds) == types.count("ProofReceived")
    assert len(case.proof_requests) == types.count("ProofRequested")
    assert case.spot_checked == ("SpotCheckPassed" in types or "SpotCheckRejected" in types)
    assert case.commitment == (commitment and "CommitmentWithdrawnRecorded" not in types)
    assert (case.status == "voided") == ("CaseVoided" in types)
    assert len(case.enquiries) == types.count("EnquiryRaised")
    assert sum(e["status"] == "open" for e in case.enquiries) <= 1
    if case.status != "voided":
        assert (case.status == "confirmed") == ("EligibilityConfirmed" in types)
        # terminated: the last final rejection was not reopened by an enquiry's answer since
        ends = [e for e in s.events if (e.type == "ManualCheckRejected" and e.payload["final"])
                or (e.type == "EnquiryAnswered" and e.payload["reopened"])]
        assert (case.status == "terminated") == bool(ends and ends[-1].type == "ManualCheckRejected")
    if case.status == "confirmed":
        confirmed = types.index("EligibilityConfirmed")  # an answer to an enquiry may follow
        last_pass = [t for t in types[:confirmed] if t in ("AutoCheckPassed", "ManualCheckPassed")][-1]
        assert s.events[confirmed].payload["via"] == ("auto" if last_pass == "AutoCheckPassed"
                                                      else "manual")
        assert s.events[confirmed].payload["spot_checked"] == ("SpotCheckPassed" in types
                                                               or "SpotCheckRejected" in types)
    if exemption or not commitment:
        assert "AutoCheckPassed" not in types and "AutoCheckFailed" not in types


# --- RPC input schemas --------------------------------------------------------------------


def test_manual_decision_schema():
    ok = ManualDecisionSchema().load({"application_id": " app-1 ", "decision": "pass"})
    assert ok == {"application_id": "app-1", "decision": "pass", "reason": "materials verified",
                  "final": False}
    rej = ManualDecisionSchema().load({"application_id": "app-1", "decision": "reject",
                                       "reason": "缺少盖章", "final": True})
    assert rej["final"] is True and rej["reason"] == "缺少盖章"
    for bad, field in [
        ({"application_id": "app-1", "decision": "reject"}, "reason"),
        ({"application_id": "app-1", "decision": "maybe"}, "decision"),
        ({"application_id": "app-1", "decision": "pass", "final": True}, "final"),
        ({"application_id": "app-1", "decision": "reject", "reason": "a\nb"}, "reason"),
        ({"application_id": "app-1", "decision": "reject", "reason": "x\u200bz"}, "reason"),
        ({"application_id": "app-1", "decision": "reject", "reason": "x" * 501}, "reason"),
        ({"application_id": "", "decision": "pass"}, "application_id"),
    ]:
        errors = ManualDecisionSchema().validate(bad)
        assert field in errors, (bad, errors)


def test_spot_check_schemas():
    s = {"session_id": "2026-shanghai-jiliang"}
    assert SpotCheckDrawSchema().load({**s, "rate": 0.05, "seed": 20260415}) == {
        **s, "rate": 0.05, "seed": 20260415}
    assert SpotCheckDrawSchema().load({**s, "rate": 1, "seed": 0})["rate"] == 1
    for bad in ({"rate": 0, "seed": 1}, {"rate": 1.5, "seed": 1}, {"rate": 0.1, "seed": -1},
                {"rate": 0.1, "seed": 2**31}, {"rate": 0.1, "seed": 1.5},
                {"rate": float("nan"), "seed": 1}, {"seed": 1}):
        assert SpotCheckDrawSchema().validate({**s, **bad}), bad
    assert "session_id" in SpotCheckDrawSchema().validate({"rate": 0.1, "seed": 1})
    assert SpotCheckDecisionSchema().load({"application_id": "a", "decision": "pass"})["reason"]
    assert "reason" in SpotCheckDecisionSchema().validate({"application_id": "a",
                                                           "decision": "reject"})


def test_staff_schema():
    assert StaffSchema().load({"staff_id": "staff-7", "registration_point": "2916"}) == {
        "staff_id": "staff-7", "registration_point": "2916"}
    assert "registration_point" in StaffSchema().validate({"staff_id": "s",
                                                           "registration_point": "29 16"})
    assert "staff_id" in StaffSchema().validate({"staff_id": "s\x00", "registration_point": "2916"})


def test_private_events_are_private():
    for name in ("CaseOpened", "ProofReceived", "CommitmentWithdrawnRecorded"):
        assert REGISTRY.public_payload(name, {"x": 1}) is None
    assert REGISTRY.public_payload("EligibilityConfirmed", {"x": 1}) == {"x": 1}


def test_a_second_draw_is_a_rule_refusal_not_bad_input():
    domain.require_first_draw("s1", drawn_before=False)
    with pytest.raises(Refused) as exc:
        domain.require_first_draw("s1", drawn_before=True)
    assert not isinstance(exc.value, ValidationFailed)
    assert exc.value.error_code == "already_drawn" and exc.value.fields == {
        "session_id": "already drawn"}


def test_proof_files_lists_every_round_with_its_decision():
    from types import SimpleNamespace as E

    from services.verification.domain import fold, proof_files

    ids = {"application_id": "S.a1", "account_id": "a1", "session_id": "S"}
    f1 = {"sha256": "1" * 64, "name": "证明.pdf", "content_type": "application/pdf", "size": 10}
    f2 = {"sha256": "2" * 64, "name": "补充.jpg", "content_type": "image/jpeg", "size": 20}
    events = [
        E(type="CaseOpened", payload={**ids, "registration_point": "2916", "level": "L1",
                                      "commitment": False, "exemption": None,
                                      "candidate": {"name": "x"}}, metadata={}),
        E(type="ProofRequested", payload={**ids, "cause": "no_commitment", "reason": "r"},
          metadata={}),
        E(type="ProofReceived", payload={**ids, "files": [f1]},
          metadata={"occurred_at": "2026-04-07T03:00:00+00:00"}),
        E(type="ManualCheckRejected", payload={**ids, "registration_point": "2916",
                                               "staff": "s", "reason": "不清晰", "final": False},
          metadata={}),
        E(type="ProofReceived", payload={**ids, "files": [f2]},
          metadata={"occurred_at": "2026-04-08T03:00:00+00:00"}),
    ]
    assert proof_files(fold(events)) == [
        {"file_id": "1" * 64, "name": "证明.pdf", "content_type": "application/pdf", "size": 10,
         "uploaded_at": "2026-04-07T03:00:00+00:00", "round": 1, "decision": "rejected"},
        {"file_id": "2" * 64, "name": "补充.jpg", "content_type": "image/jpeg", "size": 20,
         "uploaded_at": "2026-04-08T03:00:00+00:00", "round": 2, "decision": None}]


def test_a_case_passing_after_the_spot_check_is_confirmed_at_once():
    """Opened after the draw or the spot-check window (a consumer that was behind): nothing
    can sample it and the pass-through has run, so it is confirmed with its auto pass."""
    late = domain.open_case(submitted(), RULES, CLEAN, CUTOFF, NOW, draw_done=True)
    assert [e.type for e in late] == ["CaseOpened", "AutoCheckPassed", "EligibilityConfirmed"]
    assert late[-1].payload["via"] == "auto" and late[-1].payload["spot_checked"] is False
    assert Stream(late).case.status == "confirmed"
    on_time = domain.open_case(submitted(), RULES, CLEAN, CUTOFF, NOW)
    assert [e.type for e in on_time] == ["CaseOpened", "AutoCheckPassed"]
    # a failing one still goes to proof, whenever it opens
    failed = domain.open_case(submitted(), RULES, {"integrity": None, "education": {}}, CUTOFF,
                              NOW, draw_done=True)
    assert "EligibilityConfirmed" not in [e.type for e in failed]
