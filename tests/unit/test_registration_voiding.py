"""报名无效 on the application: voiding from every status, refused twice, and every later
candidate action refused; then random sequences of commands and verification outcomes
(hypothesis) keep the application on its state machine."""

from datetime import timedelta

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from services.registration import domain
from services.registration.projection import audit_entry
from services.registration.schemas import REGISTRY, VoidRegistrationSchema
from shared.errors import KaowuError, NotFound, Refused, ValidationFailed
from shared.events import StoredEvent
from tests.unit.test_registration_domain import (
    APPLY,
    OPEN,
    SESSION,
    History,
    applied,
    candidate,
    outcome,
)

FILES = [{"sha256": "a" * 64, "name": "work.pdf", "content_type": "application/pdf", "size": 10}]
CONFIRMING = SESSION.window("confirmation").start + timedelta(hours=1)


def in_status(status):
    """An application brought to ``status`` along the chart."""
    h = applied({**APPLY, "commitment": None} if status not in (
        "submitted", "auto_passed", "commitment_withdrawn") else APPLY)
    steps = {
        "submitted": [],
        "auto_passed": [("AutoCheckPassed", {"rule": "r", "reason": "ok"})],
        "auto_failed": [("AutoCheckFailed", {"rule": "r", "reason": "no"})],
        "commitment_withdrawn": ["withdraw"],
        "proof_requested": [("ProofRequested", {"cause": "no_commitment", "reason": "r"})],
        "proof_submitted": [("ProofRequested", {"cause": "no_commitment", "reason": "r"}), "proof"],
        "manual_passed": [("ProofRequested", {"cause": "no_commitment", "reason": "r"}), "proof",
                          ("ManualCheckPassed", {"reason": "ok"})],
        "manual_rejected": [("ProofRequested", {"cause": "no_commitment", "reason": "r"}), "proof",
                            ("ManualCheckRejected", {"reason": "no", "final": False})],
        "spot_check": [("SpotCheckSelected", {})],
        "spot_passed": [("SpotCheckSelected", {}), ("SpotCheckPassed", {"reason": "ok"})],
        "spot_rejected": [("SpotCheckSelected", {}), ("SpotCheckRejected", {"reason": "no"})],
        "eligible": [("EligibilityConfirmed", {"via": "auto", "spot_checked": False})],
        "confirmed": [("EligibilityConfirmed", {"via": "auto", "spot_checked": False}), "confirm"],
        "lapsed": ["close"],
        "terminated": [("ProofRequested", {"cause": "no_commitment", "reason": "r"}), "proof",
                       ("ManualCheckRejected", {"reason": "no", "final": True})],
    }[status]
    for step in steps:
        if step == "withdraw":
            h.add(domain.withdraw_commitment(SESSION, h.app, OPEN))
        elif step == "proof":
            h.add(domain.submit_proof(SESSION, h.app, FILES, OPEN))
        elif step == "confirm":
            h.add(domain.confirm(SESSION, h.app, CONFIRMING))
        elif step == "close":
            h.add(domain.close_confirmation(SESSION, [h.app]))
        else:
            outcome(h, step[0], **step[1])
    assert h.app.status == status
    return h


NOT_VOIDED = [s for s in domain.STATUS_LABELS if s != "voided"]


@pytest.mark.parametrize("status", NOT_VOIDED)
def test_voiding_from_every_status(status):
    h = in_status(status)
    evs = h.add(domain.void_registration(h.app, "authority-1", "虚假承诺：工作年限不实", True, OPEN))
    (ev,) = evs
    assert ev.type == "RegistrationVoided"
    assert ev.payload["candidate"] == {"name": "张三", "id_type": "resident_id",
                                       "id_number": "11010519491231002X"}
    assert ev.payload["by"] == "authority-1" and ev.payload["integrity"] is True
    app = h.app
    assert app.status == "voided" and domain.STATUS_LABELS["voided"] == "报名无效"
    assert app.reason == "虚假承诺：工作年限不实"
    # every further candidate action is refused, naming the voiding
    for action in (lambda a: domain.withdraw_commitment(SESSION, a, OPEN),
                   lambda a: domain.submit_proof(SESSION, a, FILES, OPEN),
                   lambda a: domain.confirm(SESSION, a, CONFIRMING)):
        with pytest.raises(Refused) as exc:
            action(app)
        assert "报名无效" in exc.value.message and exc.value.fields == {"status": "voided"}
    with pytest.raises(Refused):  # one application per session, voided or not
        domain.submit(SESSION, candidate(), "acc1", APPLY, OPEN, False, app)
    # verification's outcomes no longer count; the close of confirmation passes it by
    assert domain.record_outcome(app, StoredEvent(1, "c", 1, "ManualCheckPassed", 1, {
        "application_id": app.application_id, "reason": "late"})) == []
    assert domain.close_confirmation(SESSION, [app]) == []


def test_voiding_twice_is_refused_naming_the_first():
    h = in_status("confirmed")
    h.add(domain.void_registration(h.app, "authority-1", "虚假承诺", False, OPEN))
    with pytest.raises(Refused) as exc:
        domain.void_registration(h.app, "authority-2", "again", True, OPEN)
    assert "already voided" in exc.value.message and "authority-1" in exc.value.message


def test_voiding_needs_an_application_and_a_reason():
    with pytest.raises(NotFound):
        domain.void_registration(None, "authority-1", "r", False, OPEN)
    with pytest.raises(ValidationFailed):
        domain.void_registration(in_status("submitted").app, "authority-1", " ", False, OPEN)
    assert VoidRegistrationSchema().validate({"application_id": "a", "reason": "r"}) == {
        "integrity": ["Missing data for required field."]}
    assert "reason" in VoidRegistrationSchema().validate({"application_id": "a", "reason": "x" * 501,
                                                          "integrity": False})


def test_voiding_is_in_the_audit_trail():
    h = in_status("eligible")
    h.add(domain.void_registration(h.app, "authority-1", "虚假承诺", True, OPEN))
    e = h.events[-1]
    entry = audit_entry(StoredEvent(e.position, e.stream_id, e.stream_version, e.type, 1, e.payload,
                                    {"event_id": "x", "occurred_at": OPEN.isoformat()}))
    assert entry["staff_id"] == "authority-1" and entry["action"] == "registration_voided"
    assert entry["why"] == "虚假承诺" and "integrity record requested" in entry["what"]


# --- the application's state machine, by random sequences -----------------------------------

OUTCOMES = ["AutoCheckPassed", "AutoCheckFailed", "ProofRequested", "ManualCheckPassed",
            "ManualCheckRejected", "SpotCheckSelected", "SpotCheckPassed", "SpotCheckRejected",
            "EligibilityConfirmed", "EnquiryRaised", "EnquiryAnswered"]
COMMANDS = ["withdraw", "proof", "confirm", "void", "close"]
CAUSES = ["no_commitment", "spot_check_rejected", "enquiry_reopened"]
TIMES = [OPEN, SESSION.window("verification").end + timedelta(seconds=1), CONFIRMING,
         SESSION.window("confirmation").end + timedelta(seconds=1)]


def _payload(draw, kind, n):
    if kind == "ProofRequested":
        return {"cause": draw(st.sampled_from(CAUSES)), "reason": "r"}
    if kind == "ManualCheckRejected":
        return {"reason": "no", "final": draw(st.booleans())}
    if kind.startswith("Enquiry"):
        return {"enquiry_id": f"enq-{n}", "about": "ManualCheckRejected", "text": "?",
                "answer": "!", "staff": "s", "reopened": draw(st.booleans())}
    return {"reason": "r", "rule": "r", "via": "auto", "spot_checked": False}


@settings(max_examples=300, deadline=None)
@given(commitment=st.booleans(), steps=st.integers(0, 25), data=st.data())
def test_random_sequences_keep_the_application_on_its_state_machine(commitment, steps, data):
    h = History()
    h.add(domain.submit(SESSION, candidate(), "acc1", {**APPLY, "commitment": APPLY["commitment"]
                                                       if commitment else None}, OPEN, False, None))
    closed = False
    for n in range(steps):
        app = h.app
        before, status = len(h.events), app.status
        # mostly verification's outcomes and the candidate's commands; voiding and the close
        # of confirmation (which end everything) now and then
        kind = data.draw(st.sampled_from(OUTCOMES * 2 + COMMANDS[:3] * 2 + COMMANDS[3:]),
                         label="step")
        try:
            if kind in OUTCOMES:
                up = StoredEvent(1, "case", 1, kind, 1, {"application_id": app.application_id,
                                                         **_payload(data.draw, kind, n)}, {})
                h.add(domain.record_enquiry(app, up) if kind.startswith("Enquiry")
                      else domain.record_outcome(app, up, closed))
            elif kind == "close":
                h.add(domain.close_confirmation(SESSION, [app]))
                closed = True
            else:
                now = data.draw(st.sampled_from(TIMES), label="now")
                if kind == "withdraw":
                    h.add(domain.withdraw_commitment(SESSION, app, now))
                elif kind == "proof":
                    h.add(domain.submit_proof(SESSION, app, FILES, now))
                elif kind == "confirm":
                    h.add(domain.confirm(SESSION, app, now))
                else:
                    h.add(domain.void_registration(app, "a", "r", False, now))
        except KaowuError:
            assert len(h.events) == before  # a refusal writes nothing
            continue
        after = h.app
        new = [e.type for e in h.events[before:]]
        # a voided application never changes again, whatever arrives
        if status == "voided":
            assert new == [], (kind, new)
        # other final states change only by voiding, or a termination reopened by an enquiry
        # while confirmation is open
        elif status in domain.FINAL:
            assert set(new) <= {"RegistrationVoided", "EnquiryRecorded", "VerificationRecorded"}
            if "VerificationRecorded" in new:
                assert status == "terminated" and not closed
                assert after.status == "proof_requested" and after.proof_cause == "enquiry_reopened"
                event("reopened a termination")
        if kind == "void" and new:
            assert after.status == "voided"
        if kind.startswith("Enquiry"):
            assert after.status == status  # an enquiry changes no status
    app = h.app
    event(f"ends {app.status}")
    assert app.version == len(h.events)
    assert (app.status == "voided") == any(e.type == "RegistrationVoided" for e in h.events)
    if closed:
        assert app.status in domain.FINAL
    for e in h.events:
        REGISTRY.validate(e.type, e.payload)
