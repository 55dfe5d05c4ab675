"""What candidates read (站内信 and SMS) is Chinese throughout: every template, and every
reason another service puts in an event that ends up in a candidate's text. Codes (cause,
rule ids, subject codes), numbers and proper names may be Latin; an English sentence may
not (it used to be: "没有告知承诺（without the commitment (告知承诺), proof of education …"
).

The reasons are made by the services' own domain functions, so a new English reason there
fails here. The automatic check's reasons (ProofRequested cause auto_check_failed) are
made by auto_check and rules.evaluate: a registry with no record of the education, a
live integrity record, and an exam year without rules are among them.
"""

import re
from datetime import datetime

import pytest

from services.certificate import domain as certificate
from services.certificate.schemas import REGISTRY as CERTIFICATE_EVENTS
from services.notification import domain as notification
from services.notification.templates import PLACEHOLDERS, load_catalogue
from services.scoring import domain as scoring
from services.verification import domain as verification
from shared.clock import SHANGHAI
from shared.session import reference_session
from tests.unit.test_certificate_domain import Log, attained
from tests.unit.test_verification_domain import (
    CLEAN,
    CUTOFF,
    LIVE_RECORD,
    NOW,
    RULES,
    Stream,
    submitted,
)

CATALOGUE = load_catalogue()
DOC = reference_session()
#: two Latin words (2+ letters) in a row, separated by spaces or sentence punctuation: a
#: phrase or sentence. Codes join their parts with "_", ".", "-" or digits and pass.
LATIN_SENTENCE = re.compile(r"[A-Za-z]{2,}(?:[ \t,;:!?()'\"]+[A-Za-z]{2,})+")


def latin_sentences(text: str) -> list[str]:
    return [m.group(0) for m in LATIN_SENTENCE.finditer(text)]


def test_the_detector_finds_english_and_lets_codes_pass():
    assert latin_sentences("原因：the registry has no record")
    assert latin_sentences("（without the commitment (告知承诺), proof")
    for fine in ("准考证号JL202610000001", "科目L1-LAW", "[规则 2026.L1.本科.science_engineering]",
                 "试卷满分的60%", "证书编号C-2026-0001", "【上海人事考试】"):
        assert not latin_sentences(fine), fine


# a Chinese value for every placeholder the templates may use
SAMPLE = {"name": "王建国", "exam": DOC.name, "reason": "材料不全", "cause": "需人工核查",
          "deadline": datetime(2026, 4, 14, 16, tzinfo=SHANGHAI),
          "confirmation_start": datetime(2026, 4, 17, 10, tzinfo=SHANGHAI),
          "confirmation_end": datetime(2026, 4, 24, 16, tzinfo=SHANGHAI),
          "printing_start": datetime(2026, 6, 1, 9, tzinfo=SHANGHAI),
          "printing_end": datetime(2026, 6, 12, 16, tzinfo=SHANGHAI),
          "ticket_number": "202629161000001", "certificate_number": "JL202610000001",
          "level_name": "一级", "answer": "已核实，材料齐全", "point": "2916",
          # the password-reset SMS's (the account branch adds them)
          "code": "123456", "expires": datetime(2026, 4, 7, 10, 10, tzinfo=SHANGHAI)}


def test_the_sample_fills_every_placeholder():
    assert set(SAMPLE) >= PLACEHOLDERS


@pytest.mark.parametrize("key", sorted(CATALOGUE.templates))
def test_every_template_is_chinese(key):
    rendered = CATALOGUE.render(key, SAMPLE)
    for part in (rendered.title, rendered.body, rendered.sms):
        assert not latin_sentences(part), (key, part)


@pytest.mark.parametrize("cause", sorted(CATALOGUE.proof_causes))
def test_every_proof_cause_reads_in_chinese(cause):
    assert not latin_sentences(CATALOGUE.proof_causes[cause])
    assert re.search(r"[\u4e00-\u9fff]", CATALOGUE.proof_causes[cause])


# --- the reasons other services write, as they reach the candidate ----------------------------

def _proof_requests(events):
    return [e for e in events if e.type == "ProofRequested"]


def _no_commitment():
    return _proof_requests(verification.open_case(submitted(commitment=False), RULES, CLEAN,
                                                  CUTOFF, NOW))


def _exemption(ground):
    def make():
        return _proof_requests(verification.open_case(
            submitted(exemption={"subject": "L1-LAW", "ground": ground}), RULES, CLEAN, CUTOFF, NOW))
    return make


def _auto_check(rules, facts, **kw):
    def make():
        return _proof_requests(verification.open_case(submitted(), rules, facts, CUTOFF, NOW,
                                                      **kw))
    return make


def _commitment_withdrawn():
    s = Stream(verification.open_case(submitted(), RULES, CLEAN, CUTOFF, NOW))
    return _proof_requests(s.append(verification.commitment_withdrawn(s.case, NOW)))


def _certificate_revoked_for_voided_scores():
    """成绩无效 → scoring withdraws the qualification → certificate revokes: the reason
    travels through two services into the candidate's certificate_revoked message."""
    record = scoring.CandidateRecord("acc-1", qualifications={"q-1": scoring.Qualification(
        "q-1", "acc-1", "L1", DOC.session_id, 2026, [{"session_id": DOC.session_id}])})
    withdrawn = [e for e in scoring.void_events(
        record, session_id=DOC.session_id, application_id="app-1", reason="考试作弊",
        by="authority-1", integrity=True) if e.type == "QualificationWithdrawn"]
    assert withdrawn
    log = Log()
    log.issue(attained())
    revoked = log.append(certificate.withdraw(log.q(), withdrawn[0].payload["reason"],
                                              datetime(2026, 9, 20, tzinfo=SHANGHAI)))
    for e in revoked:
        CERTIFICATE_EVENTS.validate(e.type, e.payload)
    return revoked


REASONS = {
    "ProofRequested no_commitment": _no_commitment,
    "ProofRequested exemption_claimed senior_title": _exemption("senior_title"),
    "ProofRequested exemption_claimed verifier_certificate": _exemption("verifier_certificate"),
    "ProofRequested commitment_withdrawn": _commitment_withdrawn,
    "ProofRequested auto_check_failed (no registry record)": _auto_check(
        RULES, {"integrity": None, "education": {}}),
    "ProofRequested auto_check_failed (integrity record)": _auto_check(
        RULES, {**CLEAN, "integrity": LIVE_RECORD}),
    "ProofRequested auto_check_failed (no rules for the year)": _auto_check(
        None, CLEAN, exam_year=2027),
    "CertificateRevoked (scores voided)": _certificate_revoked_for_voided_scores,
}


@pytest.mark.parametrize("what", sorted(REASONS))
def test_every_reason_that_reaches_a_candidate_is_chinese(what):
    events = REASONS[what]()
    assert events, what
    told = 0
    for e in events:
        message = notification.outcome_message(e.type, e.payload, DOC, CATALOGUE.proof_causes)
        assert message is not None, f"{what}: no message to the candidate"
        template, extra = message
        rendered = CATALOGUE.render(template, {"name": "王建国", "exam": DOC.name, **extra})
        for part in (rendered.title, rendered.body, rendered.sms):
            assert not latin_sentences(part), (what, part)
        told += 1
    assert told


@pytest.mark.parametrize("cause", ["spot_check_rejected", "enquiry_reopened"])
def test_causes_whose_reason_is_told_by_another_message_send_none(cause):
    """Their ProofRequested says nothing of its own (SpotCheckRejected / EnquiryAnswered
    tells, with the authority's or staff's own words); so their reason reaches no one."""
    assert notification.outcome_message("ProofRequested", {"cause": cause, "reason": "x"},
                                        DOC, CATALOGUE.proof_causes) is None


def test_a_reopened_enquirys_reason_is_chinese_too():
    """Shown with the case (the candidate's application), not in a message."""
    assert not latin_sentences(verification._reopen_reason("2916", "请补充社保记录"))


def test_the_reasons_an_application_ends_with_are_chinese():
    """Lapsed or terminated when confirmation closes, terminated at the manual check: the
    candidate reads them on the application (registration's get_application)."""
    from services.registration import domain as registration
    from tests.unit.test_registration_domain import APPLY, SESSION, applied
    from tests.unit.test_registration_enquiries import raised, terminated

    final = terminated()  # a final manual-check rejection: RegistrationTerminated
    unresolved = applied({**APPLY, "commitment": None})
    raised(unresolved, "enq-1")
    eligible = applied(APPLY)
    eligible.add(registration.record_outcome(eligible.app, _upstream(eligible, "EligibilityConfirmed")))
    ends = [e for e in final.events if e.type == "RegistrationTerminated"]
    ends += registration.close_confirmation(SESSION, [unresolved.app, eligible.app])
    reasons = {e.type + ":" + e.payload["reason"] for e in ends}
    assert len(reasons) == 3, reasons
    for reason in reasons:
        assert not latin_sentences(reason), reason


def _upstream(h, type_, **payload):
    from shared.events import StoredEvent

    return StoredEvent(1, "case-x", 1, type_, 1, {"application_id": h.app.application_id,
                                                  **payload}, {"occurred_at": NOW.isoformat()})
