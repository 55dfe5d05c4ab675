"""The Case's evolve (``domain.CASE``): for random legal histories the fold and the read
model's case and enquiry rows agree on the status and every field they share."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.verification import domain
from services.verification.projection import CASE_COLUMNS, VerificationProjection
from shared.events import StoredEvent
from tests.unit.evolve_check import history, rows

IDS = {"application_id": "S1.acc1", "account_id": "acc1", "session_id": "S1"}
OPENING = ("CaseOpened", {
    **IDS, "registration_point": "2916", "level": "L1", "commitment": True, "exemption": None,
    "candidate": {"name": "张三", "id_type": "resident_id", "id_number": "11010519491231002X"},
    "rules": None})
reasons = st.sampled_from(["", "材料不全", "学历不符"])


def payload(**fields):
    """A strategy of ``IDS`` and ``fields`` (each a value or a strategy)."""
    fixed = {**IDS, **{k: v for k, v in fields.items() if not isinstance(v, st.SearchStrategy)}}
    drawn = {k: v for k, v in fields.items() if isinstance(v, st.SearchStrategy)}
    return st.fixed_dictionaries(drawn).map(lambda d: {**fixed, **d}) if drawn else st.just(fixed)


def enquiry_id(case):
    """Mostly the open enquiry (a legal answer), now and then another (the fold refuses it)."""
    open_ = case.open_enquiry
    return st.sampled_from([open_["enquiry_id"]] * 3 + ["Q-none"]) if open_ else st.just("Q-none")


PAYLOADS = {
    "AutoCheckPassed": lambda c: payload(rule=st.sampled_from(["r1", ""]), reason=reasons),
    "AutoCheckFailed": lambda c: payload(rule=st.sampled_from(["r2", ""]), reason=reasons),
    "CommitmentWithdrawnRecorded": lambda c: payload(),
    "ProofRequested": lambda c: payload(
        cause=st.sampled_from(["no_commitment", "auto_check_failed", "spot_check_rejected",
                               "enquiry_reopened", "commitment_withdrawn"]), reason=reasons),
    "ProofReceived": lambda c: payload(files=[]),
    "ManualCheckPassed": lambda c: payload(staff="s1", registration_point="2916",
                                           reason=st.sampled_from(["ok", "符合"])),
    "ManualCheckRejected": lambda c: payload(staff="s1", registration_point="2916",
                                             reason=st.sampled_from(["no", "不符"]),
                                             final=st.booleans()),
    "SpotCheckSelected": lambda c: payload(draw_id="D1", seed=st.integers(0, 9), rate=0.1),
    "SpotCheckPassed": lambda c: payload(by="auth", reason=reasons),
    "SpotCheckRejected": lambda c: payload(by="auth", reason=st.just("不符")),
    "EligibilityConfirmed": lambda c: payload(via=st.sampled_from(["auto", "manual"]),
                                              spot_checked=st.booleans()),
    "EnquiryRaised": lambda c: payload(
        enquiry_id=f"Q{len(c.enquiries) + 1}",
        registration_point="2916", about="ManualCheckRejected", text="?", raised_at="t"),
    "EnquiryAnswered": lambda c: payload(enquiry_id=enquiry_id(c), registration_point="2916",
                                         staff="s1", answer="!", reopened=st.booleans(),
                                         answered_at="t"),
    "EnquiryClosed": lambda c: payload(enquiry_id=enquiry_id(c), reason="逾期"),
    "CaseVoided": lambda c: payload(reason="作弊", by="auth", integrity=st.booleans(),
                                    enquiry_id=(c.open_enquiry or {}).get("enquiry_id")),
    "ScoresVoidedRecorded": lambda c: payload(reason="作弊", by="auth", integrity=True),
}


RARE = frozenset({"ScoresVoidedRecorded", "CaseVoided", "EnquiryClosed"})


def test_every_step_of_the_evolve_has_a_payload_here():
    assert set(domain.CASE) - domain.CASE.opens == set(PAYLOADS)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_fold_and_rows_agree(data):
    events, case = history(data, domain.CASE, domain.case_stream(IDS["application_id"]),
                           OPENING, PAYLOADS, max_events=20, rare=RARE)
    tables = rows(VerificationProjection(), events)
    [row] = tables["cases"].values()
    assert row["candidate_name"] == case.candidate["name"]
    for name in set(CASE_COLUMNS) - {"candidate"}:
        assert row[name] == getattr(case, name), name
    assert row["version"] == case.version
    enquiries = {r["enquiry_id"]: r for r in tables.get("enquiries", {}).values()}
    assert set(enquiries) == {e["enquiry_id"] for e in case.enquiries}
    for e in case.enquiries:
        assert {k: enquiries[e["enquiry_id"]][k] for k in e} == e


def test_the_fold_refuses_a_move_the_chart_does_not_have():
    def ev(n, type_, **p):
        return StoredEvent(n, "case-S1.acc1", n, type_, 1, {**IDS, **p}, {})

    opened = ev(1, *OPENING[:1], **OPENING[1])
    with pytest.raises(ValueError, match="cannot follow status 'auto_check'"):
        domain.fold([opened, ev(2, "ManualCheckPassed", staff="s", registration_point="2916",
                                reason="ok")])
    with pytest.raises(ValueError, match="must be followed by ProofRequested"):
        domain.fold([opened, ev(2, "AutoCheckFailed", rule="r", reason="x"),
                     ev(3, "CommitmentWithdrawnRecorded")])
