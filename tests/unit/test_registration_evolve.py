"""The Application's evolve (``domain.APPLICATION``): for random legal histories the fold
and the read model's row agree on the status and every field they share."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.registration import domain
from services.registration.projection import RegistrationProjection
from shared.events import StoredEvent
from tests.unit.evolve_check import history, rows

IDS = {"application_id": "S1.acc1", "account_id": "acc1", "session_id": "S1"}
CANDIDATE = {"name": "张三", "id_type": "resident_id", "id_number": "11010519491231002X"}
OPENING = ("ApplicationSubmitted", {
    **IDS, "level": "L1", "subjects": ["A", "B"], "exemption": None, "registration_point": "2916",
    "commitment": {"pledge_version": "1", "signed_name": "张三", "signed_at": "x"},
    "candidate": CANDIDATE, "submitted_at": "2026-04-08T10:00:00+08:00"})
CONFIRMED = {**IDS, "level": "L1", "subjects": ["A"], "exemption": None,
             "registration_point": "2916", "candidate": CANDIDATE, "confirmed_at": "t"}
reasons = st.sampled_from(["", "材料不全", "学历不符"])


def const(payload):
    return lambda state: st.just(payload)


PAYLOADS = {
    "CommitmentWithdrawn": const({**IDS, "withdrawn_at": "t"}),
    "ProofSubmitted": const({**IDS, "files": [], "submitted_at": "t"}),
    "VerificationRecorded": lambda state: st.fixed_dictionaries({
        "application_id": st.just(IDS["application_id"]),
        "outcome": st.sampled_from(sorted(domain.OUTCOME_STATUS)), "reason": reasons,
        "rule": st.none() | st.just("r1"),
        "cause": st.sampled_from([None, "auto_check_failed", "spot_check_rejected",
                                  "enquiry_reopened"]), "at": st.just("t")}),
    "ApplicationConfirmed": const(CONFIRMED),
    "ApplicationLapsed": lambda state: st.builds(lambda r: {**IDS, "reason": r}, reasons),
    "RegistrationTerminated": lambda state: st.builds(lambda r: {**IDS, "reason": r}, reasons),
    "RegistrationVoided": lambda state: st.builds(
        lambda r, i: {**IDS, "reason": r or "作弊", "by": "auth", "integrity": i,
                      "candidate": CANDIDATE, "voided_at": "t"}, reasons, st.booleans()),
    "EnquiryRecorded": lambda state: st.builds(
        lambda kind, n: {"application_id": IDS["application_id"], "enquiry_id": f"Q{n}",
                         "kind": kind, "about": "ManualCheckRejected", "text": "?",
                         "reopened": False, "at": "t"},
        st.sampled_from(["raised", "answered"]), st.integers(1, 3)),
}


RARE = frozenset({"RegistrationVoided", "ApplicationLapsed", "RegistrationTerminated"})


def test_every_step_of_the_evolve_has_a_payload_here():
    assert set(domain.APPLICATION) - domain.APPLICATION.opens == set(PAYLOADS)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_fold_and_row_agree(data):
    events, app = history(data, domain.APPLICATION, domain.application_stream(IDS["application_id"]),
                          OPENING, PAYLOADS, rare=RARE)
    [row] = rows(RegistrationProjection(), events)["applications"].values()
    assert row["commitment"] == (app.commitment is not None)
    for name in ("application_id", "account_id", "session_id", "level", "subjects", "exemption",
                 "registration_point", "status", "reason", "proof_cause", "open_enquiry",
                 "version"):
        assert row[name] == getattr(app, name), name


def test_the_fold_refuses_a_move_the_chart_does_not_have():
    def ev(n, type_, payload):
        return StoredEvent(n, "application-S1.acc1", n, type_, 1, payload, {})

    opened = ev(1, *OPENING)
    with pytest.raises(ValueError, match="cannot follow status 'submitted'"):
        domain.fold_application([opened, ev(2, "ApplicationConfirmed", CONFIRMED)])
    with pytest.raises(ValueError, match="twice"):
        domain.fold_application([opened, opened])
