"""疑问核实 on the application: enquiries in its history, reopening after a final rejection
(only while confirmation is open), proof after a reopening, and the close of confirmation
(an open enquiry keeps nothing alive: 报名不成功)."""

from datetime import timedelta

import pytest

from services.registration import domain
from services.registration.projection import RegistrationProjection
from shared.errors import Refused
from shared.events import StoredEvent
from tests.unit.test_registration_domain import APPLY, OPEN, SESSION, applied, outcome

SECOND = timedelta(seconds=1)
FILES = [{"sha256": "a" * 64, "name": "work.pdf", "content_type": "application/pdf", "size": 10}]
CONF_END = SESSION.window("confirmation").end


def upstream(h, type_, **payload):
    return StoredEvent(1, "case-x", 1, type_, 1, {"application_id": h.app.application_id, **payload},
                       {"occurred_at": OPEN.isoformat()})


def terminated():
    h = applied({**APPLY, "commitment": None})
    outcome(h, "ProofRequested", cause="no_commitment", reason="r")
    h.add(domain.submit_proof(SESSION, h.app, FILES, OPEN))
    outcome(h, "ManualCheckRejected", reason="学历证书与学信网记录不符", final=True)
    assert h.app.status == "terminated"
    return h


def raised(h, enquiry_id="enq-1"):
    return h.add(domain.record_enquiry(h.app, upstream(
        h, "EnquiryRaised", enquiry_id=enquiry_id, about="ManualCheckRejected", text="请再核实")))


def answered(h, reopened, enquiry_id="enq-1"):
    return h.add(domain.record_enquiry(h.app, upstream(
        h, "EnquiryAnswered", enquiry_id=enquiry_id, staff="s", answer="已核实", reopened=reopened)))


def reopen(h, closed=False):
    return h.add(domain.record_outcome(h.app, upstream(
        h, "ProofRequested", cause="enquiry_reopened", reason="reopened after your enquiry"), closed))


def test_enquiries_are_in_the_history_and_change_no_status():
    h = terminated()
    evs = raised(h)
    assert [e.type for e in evs] == ["EnquiryRecorded"]
    assert h.app.status == "terminated" and h.app.open_enquiry == "enq-1"
    answered(h, reopened=False)
    assert h.app.status == "terminated" and h.app.open_enquiry is None


def test_a_reopened_termination_asks_for_proof_until_confirmation_closes():
    h = terminated()
    raised(h)
    answered(h, reopened=True)
    evs = reopen(h)
    assert [e.type for e in evs] == ["VerificationRecorded"]
    app = h.app
    assert app.status == "proof_requested" and app.proof_cause == "enquiry_reopened"
    assert domain.proof_window(SESSION, app) == "confirmation"
    with pytest.raises(Refused) as exc:
        domain.submit_proof(SESSION, app, FILES, CONF_END + SECOND)
    assert "reopening on your enquiry" in exc.value.message
    h.add(domain.submit_proof(SESSION, app, FILES, CONF_END))
    outcome(h, "ManualCheckPassed", reason="补充材料核实无误")
    outcome(h, "EligibilityConfirmed", via="manual", spot_checked=False)
    h.add(domain.confirm(SESSION, h.app, CONF_END))
    assert h.app.status == "confirmed"


def test_nothing_reopens_once_confirmation_has_closed():
    h = terminated()
    assert reopen(h, closed=True) == []
    assert h.app.status == "terminated"


@pytest.mark.parametrize("end", ["ApplicationLapsed", "ApplicationConfirmed", "RegistrationVoided"])
def test_lapsed_confirmed_or_voided_never_reopen(end):
    h = applied()
    outcome(h, "AutoCheckPassed", rule="r", reason="ok")
    outcome(h, "EligibilityConfirmed", via="auto", spot_checked=False)
    if end == "ApplicationLapsed":
        h.add(domain.close_confirmation(SESSION, [h.app]))
    elif end == "ApplicationConfirmed":
        h.add(domain.confirm(SESSION, h.app, CONF_END))
    else:
        h.add(domain.void_registration(h.app, "authority-1", "虚假承诺", True, OPEN))
    status = h.app.status
    assert reopen(h) == []
    assert h.app.status == status


def test_a_non_final_rejection_reopened_keeps_proof_open_until_the_close():
    h = applied({**APPLY, "commitment": None})
    outcome(h, "ProofRequested", cause="no_commitment", reason="r")
    h.add(domain.submit_proof(SESSION, h.app, FILES, OPEN))
    outcome(h, "ManualCheckRejected", reason="缺少盖章", final=False)
    after_verification = SESSION.window("verification").end + SECOND
    with pytest.raises(Refused):  # a plain rejection: proof only in the verification window
        domain.submit_proof(SESSION, h.app, FILES, after_verification)
    raised(h)
    answered(h, reopened=True)
    reopen(h)
    h.add(domain.submit_proof(SESSION, h.app, FILES, after_verification))
    assert h.app.status == "proof_submitted"


def test_close_with_an_open_enquiry_is_unsuccessful():
    rejected = terminated()
    raised(rejected)
    answered(rejected, reopened=True)
    reopen(rejected)
    raised(rejected, "enq-2")  # (verification would not let this through; registration just ends it)
    open_rejection = applied({**APPLY, "commitment": None})
    outcome(open_rejection, "ProofRequested", cause="no_commitment", reason="r")
    open_rejection.add(domain.submit_proof(SESSION, open_rejection.app, FILES, OPEN))
    outcome(open_rejection, "ManualCheckRejected", reason="缺少盖章", final=False)
    raised(open_rejection, "enq-3")
    evs = domain.close_confirmation(SESSION, [rejected.app, open_rejection.app])
    lapse, end = evs
    assert lapse.type == "ApplicationLapsed" and end.type == "RegistrationTerminated"
    assert lapse.payload["reason"].startswith("报名不成功：核对确认截止时资格核查仍未完成")
    assert "您的疑问（enq-2）截止时仍未办结" in lapse.payload["reason"]
    assert end.payload["reason"].startswith("报名不成功：人工核查未通过")
    assert "您的疑问（enq-3）截止时仍未办结" in end.payload["reason"]
    rejected.add([lapse])
    assert rejected.app.status == "lapsed"
    assert domain.status_label(rejected.app).startswith("报名不成功")


def test_an_eligible_application_not_confirmed_is_given_up_not_unsuccessful():
    h = applied()
    outcome(h, "AutoCheckPassed", rule="r", reason="ok")
    outcome(h, "EligibilityConfirmed", via="auto", spot_checked=False)
    h.add(domain.close_confirmation(SESSION, [h.app]))
    assert "逾期视为放弃报名" in h.app.reason
    assert domain.status_label(h.app) == domain.STATUS_LABELS["lapsed"]


def test_read_model_follows_the_open_enquiry():
    h = terminated()
    raised(h)
    answered(h, reopened=True)
    reopen(h)
    projection = RegistrationProjection()
    events = [StoredEvent(e.position, e.stream_id, e.stream_version, e.type, 1, e.payload,
                          {**e.metadata, "event_id": f"e{e.position}"}) for e in h.events]
    values = [c.values for e in events for c in projection.handle(e) if c.table == "applications"]
    assert [v.get("open_enquiry", "-") for v in values[-3:]] == ["enq-1", None, "-"]
    assert values[-1]["status"] == "proof_requested"
