"""The VerificationCase aggregate (核查案件): one per application. Pure: no I/O, no clock.

A command function takes the folded ``Case`` (or, to open one, the ApplicationSubmitted
payload with the rules and the reference facts already gathered), plain values such as
``now`` (an aware datetime from the caller's clock), the cut-off date and window checks,
and returns the events to append to the case's stream. Rules that say no raise
``Refused``, ``Unauthorized`` or ``ValidationFailed`` with a message fit for the caller.

Status, along the edges of the seed's chart (I…S)::

    auto_check ──AutoCheckPassed──────────────────────────────► passed
        │ AutoCheckFailed / no commitment / exemption claimed     │  ▲
        ▼                                                         │  │ ManualCheckPassed
    awaiting_proof ◄── ProofRequested (commitment withdrawn) ─────┤  │
        │ ProofReceived                                           │  │
        ▼                                                         │  │
    awaiting_manual ──────────────────────────────────────────────┼──┘
        │ ManualCheckRejected                                     │ SpotCheckSelected
        ├─► manual_rejected ──ProofReceived──► awaiting_manual    ▼
        └─► terminated (final)                                  spot_check
                                                                  ├ SpotCheckPassed ─► confirmed
    passed ──EligibilityConfirmed (not sampled)──► confirmed      └ SpotCheckRejected ─► awaiting_proof

疑问核实 (enquiries): while a manual-check or spot-check rejection stands (manual_rejected,
terminated, or awaiting_proof after SpotCheckRejected) the candidate may raise one enquiry
at a time (EnquiryRaised) until 核对确认 closes; staff of the case's point answer it in
their service hours (EnquiryAnswered). An answer that reopens the case is followed by
ProofRequested(enquiry_reopened): back to proof and the manual check, even from
``terminated``. When confirmation closes, an enquiry still open is closed unanswered
(EnquiryClosed): 逾期视作报名不成功.

报名无效 (voiding): the exam authority voids a registration (registration's
RegistrationVoided) at any stage: the case becomes ``voided`` (CaseVoided), final, and no
decision is taken on it any more. With ``integrity`` an integrity record (诚信档案) is
written for the candidate's ID (IntegrityRecordWritten); scoring's ScoresVoided with
``integrity`` writes one too (ScoresVoidedRecorded on the case, for the audit trail).

报考条件 (eligibility rules): a case is checked against its exam year's rules in force when
it opens and records which version (CaseOpened ``rules``); where the year has none (or none
for the level), a pledge cannot be checked automatically and the case goes to proof and the
manual check (AutoCheckFailed, rule ``<year>.no-eligibility-rules``). The rules themselves
are versioned per exam year by the RuleBook aggregate at the end of this module
(EligibilityRulesLoaded, private).

Integration events (AutoCheck…, ProofRequested, ManualCheck…, SpotCheck…,
EligibilityConfirmed, Enquiry…, IntegrityRecordWritten) follow
``shared.contracts.verification``; CaseOpened, ProofReceived, CommitmentWithdrawnRecorded,
EnquiryClosed, CaseVoided and ScoresVoidedRecorded are this service's own
(``schemas.PRIVATE``).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time

from services.verification.rules import (
    CATEGORY_TEXT,
    Rules,
    document_digest,
    evaluate,
    rules_from_document,
)
from shared.clock import iso, shanghai
from shared.errors import Refused, Unauthorized, ValidationFailed
from shared.events import NewEvent
from shared.evolve import Evolve, Step
from shared.session import WINDOW_LABELS, RegistrationPoint, SessionDocument, Window

STATUSES = (
    "auto_check",  # opened; the automatic check (if any) has not decided yet
    "awaiting_proof",  # 提交证明材料: the candidate must upload proof
    "awaiting_manual",  # 人工核查: proof received, a registration point decides
    "manual_rejected",  # 人工核查不通过, not final: more proof may be submitted
    "passed",  # 通过 (auto or manual): awaiting the spot-check draw
    "spot_check",  # 抽查复核: drawn, awaiting the exam authority's decision
    "confirmed",  # EligibilityConfirmed: verification is done
    "terminated",  # final manual rejection: 报名终止 (an enquiry's answer may reopen it)
    "voided",  # 报名无效: voided by the exam authority; nothing more happens to it
)
FINAL_STATUSES = ("confirmed", "terminated", "voided")
# the outcomes a candidate may question (疑问核实), by the status they leave the case in.
# A pass is not among them: it leaves nothing to reopen (a question about its wording is
# an ordinary enquiry by phone, not a case matter).
QUESTIONABLE = ("ManualCheckRejected", "SpotCheckRejected")

INTEGRITY_RULE = "integrity.live-record"
EDUCATION_RULE = "education.unverified"


# --- the aggregate --------------------------------------------------------------------


@dataclass
class ProofRound:
    """One submission of proof and the manual decision on it."""

    files: list[dict]
    decision: str | None = None  # passed | rejected (None: not decided yet)
    reason: str | None = None
    staff: str | None = None
    final: bool = False


@dataclass
class Case:
    application_id: str
    account_id: str
    session_id: str
    registration_point: str  # the point whose staff decide the manual check
    level: str  # L1 | L2
    commitment: bool  # 告知承诺 signed and not withdrawn
    exemption: dict | None
    candidate: dict  # the profile snapshot at submission (has the ID number: keep it in)
    rules: dict | None = None  # {"exam_year", "version", "digest"} in force at opening
    version: int = 0  # stream version of the last folded event
    status: str = "auto_check"
    reason: str = ""  # the latest reason given on the case (what a queue shows)
    rule: str | None = None  # the latest rule that decided
    auto_check: dict | None = None  # {"passed", "rule", "reason"} if the auto check ran
    proof_requests: list[dict] = field(default_factory=list)  # {"cause", "reason"}
    proof_cause: str | None = None  # why proof was last requested
    proof_rounds: list[ProofRound] = field(default_factory=list)
    passed_via: str | None = None  # auto | manual: how the case last reached `passed`
    draw: dict | None = None  # {"draw_id", "seed", "rate"} once drawn for the spot check
    spot_checked: bool = False  # a spot-check decision was taken
    spot_check_rejected: bool = False  # came back through the spot check (抽查复核不通过)
    confirmed_via: str | None = None
    final_rejection: bool = False
    # 疑问核实: {"enquiry_id", "about", "text", "raised_at", "status": open|answered|closed,
    # "answer", "staff", "reopened", "answered_at", "closed_reason"}, oldest first
    enquiries: list[dict] = field(default_factory=list)
    voided: dict | None = None  # {"reason", "by", "integrity"} once voided (报名无效)
    history: list[dict] = field(default_factory=list)  # {"version", "type", "at", ...detail}
    _pending: str | None = field(default=None, repr=False)  # the event type that must follow

    @property
    def done(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def open_enquiry(self) -> dict | None:
        return next((e for e in self.enquiries if e["status"] == "open"), None)

    def enquiry(self, enquiry_id: str) -> dict | None:
        return next((e for e in self.enquiries if e["enquiry_id"] == enquiry_id), None)


def questionable(case: Case) -> str | None:
    """The standing outcome a candidate may question (疑问核实), or None: a manual-check
    rejection (final or not) not yet answered by new proof, or a spot-check rejection
    whose proof has not been sent yet."""
    if case.status in ("manual_rejected", "terminated"):
        return "ManualCheckRejected"
    if case.status == "awaiting_proof" and case.proof_cause == "spot_check_rejected":
        return "SpotCheckRejected"
    return None


def case_stream(application_id: str) -> str:
    return f"case-{application_id}"


def integrity_stream(record_id: str) -> str:
    return f"integrity-{record_id}"


def integrity_record_id(source: str) -> str:
    """One record per source (a voided registration, voided scores): written once."""
    return "IR-" + hashlib.sha256(source.encode()).hexdigest()[:20].upper()


# --- fold -----------------------------------------------------------------------------

_IDS = ("application_id", "account_id", "session_id")
_NOT_IN_HISTORY = (*_IDS, "candidate")

_LIVE = tuple(s for s in STATUSES if s != "voided")


def _edge_error(case: Case, event) -> ValueError:
    return ValueError(
        f"{event.type} cannot follow status {case.status!r} "
        f"(case {case.application_id}, after version {case.version})"
    )


def _check(case: Case, event) -> None:
    """What the edge table cannot say: an event that must come next, edges out of
    ``passed`` / ``spot_check`` / a rejection that only the event before opens, one open
    enquiry at a time."""
    t, p = event.type, event.payload
    pending, case._pending = case._pending, None
    if pending is not None and t != pending:
        raise ValueError(
            f"{t} in case {case.application_id} at version {case.version + 1}: "
            f"the previous event must be followed by {pending}"
        )
    if t == "ProofRequested" and case.status != "auto_check" and pending is None:
        raise _edge_error(case, event)
    if t == "EligibilityConfirmed" and case.status == "spot_check" and pending is None:
        raise _edge_error(case, event)
    if t == "EnquiryRaised" and case.open_enquiry is not None:
        raise ValueError(f"EnquiryRaised in case {case.application_id} while enquiry "
                         f"{case.open_enquiry['enquiry_id']} is open")
    if t in ("EnquiryAnswered", "EnquiryClosed"):
        asked = case.enquiry(p["enquiry_id"])
        if asked is None or asked["status"] != "open":
            raise ValueError(f"{t} in case {case.application_id}: enquiry {p['enquiry_id']} "
                             f"is not open")


def _history(case: Case, event) -> None:
    metadata = getattr(event, "metadata", None) or {}
    detail = {k: v for k, v in event.payload.items() if k not in _NOT_IN_HISTORY}
    case.history.append({"version": case.version, "type": event.type,
                         "at": metadata.get("occurred_at"), **detail})


def _opened(event) -> Case:
    p = event.payload
    return Case(application_id=p["application_id"], account_id=p["account_id"],
                session_id=p["session_id"], registration_point=p["registration_point"],
                level=p["level"], commitment=bool(p["commitment"]),
                exemption=p.get("exemption"), candidate=p["candidate"], rules=p.get("rules"))


def _auto_check(passed: bool):
    def sets(event):
        p = event.payload
        out = {"auto_check": {"passed": passed, "rule": p["rule"], "reason": p["reason"]},
               "reason": p["reason"] or None, "rule": p["rule"] or None}
        out = {k: v for k, v in out.items() if v is not None}
        if passed:
            out.update(status="passed", passed_via="auto")
        else:
            out["_pending"] = "ProofRequested"
        return out
    return sets


def _latest_reason(event) -> dict:
    """The event's reason, if it gives one, as the case's latest."""
    return {"reason": event.payload["reason"]} if event.payload.get("reason") else {}


def _proof_requested(case: Case, event) -> None:
    case.proof_requests.append({"cause": event.payload["cause"],
                                "reason": event.payload["reason"]})


def _proof_received(case: Case, event) -> None:
    case.proof_rounds.append(ProofRound(files=list(event.payload["files"])))


def _manual_decision(case: Case, event) -> None:
    p = event.payload
    round_ = case.proof_rounds[-1]
    round_.decision = "passed" if event.type == "ManualCheckPassed" else "rejected"
    round_.reason, round_.staff = p["reason"], p["staff"]
    round_.final = bool(p.get("final"))


def _manual_rejected(event) -> dict:
    if event.payload.get("final"):
        return {"status": "terminated", "final_rejection": True, **_latest_reason(event)}
    return {"status": "manual_rejected", **_latest_reason(event)}


VOIDED_ENQUIRY = {"status": "closed", "closed_reason": "the registration was voided"}

# 疑问核实: event type -> the fields it sets on the enquiry it names (the case's list and the
# read model's enquiries row alike)
ENQUIRY_FIELDS = {
    "EnquiryRaised": lambda p: {
        "about": p["about"], "text": p["text"], "raised_at": p["raised_at"], "status": "open",
        "answer": None, "staff": None, "reopened": None, "answered_at": None,
        "closed_reason": None},
    "EnquiryAnswered": lambda p: {
        "status": "answered", "answer": p["answer"], "staff": p["staff"],
        "reopened": p["reopened"], "answered_at": p["answered_at"]},
    "EnquiryClosed": lambda p: {"status": "closed", "closed_reason": p["reason"]},
}


def _enquiry(case: Case, event) -> None:
    p = event.payload
    fields_ = ENQUIRY_FIELDS[event.type](p)
    if event.type == "EnquiryRaised":
        case.enquiries.append({"enquiry_id": p["enquiry_id"], **fields_})
    else:
        case.enquiry(p["enquiry_id"]).update(fields_)


def _case_voided(case: Case, event) -> None:
    open_ = case.open_enquiry
    if open_ is not None:
        open_.update(VOIDED_ENQUIRY)


# the Case's evolve: event type -> its step (the statuses it may follow, the fields it sets,
# what else it does); the fold and the read model's case row both use it
CASE = Evolve("case", {
    "CaseOpened": Step.opening(_opened),
    "AutoCheckPassed": Step(("auto_check",), _auto_check(True)),
    "AutoCheckFailed": Step(("auto_check",), _auto_check(False)),
    "CommitmentWithdrawnRecorded": Step(("auto_check", "passed"), lambda ev: {
        "commitment": False, "_pending": "ProofRequested"}),
    # from a rejection only when an enquiry's answer reopened the case (pending)
    "ProofRequested": Step(
        ("auto_check", "passed", "spot_check", "manual_rejected", "terminated", "awaiting_proof"),
        lambda ev: {"status": "awaiting_proof", "passed_via": None,
                    "proof_cause": ev.payload["cause"], **_latest_reason(ev)},
        then=_proof_requested),
    "ProofReceived": Step(("awaiting_proof", "manual_rejected"),
                          lambda ev: {"status": "awaiting_manual"}, then=_proof_received),
    "ManualCheckPassed": Step(("awaiting_manual",), lambda ev: {
        "status": "passed", "passed_via": "manual", **_latest_reason(ev)}, then=_manual_decision),
    "ManualCheckRejected": Step(("awaiting_manual",), _manual_rejected, then=_manual_decision),
    "SpotCheckSelected": Step(("passed",), lambda ev: {
        "status": "spot_check",
        "draw": {k: ev.payload[k] for k in ("draw_id", "seed", "rate")}}),
    "SpotCheckPassed": Step(("spot_check",), lambda ev: {
        "spot_checked": True, "_pending": "EligibilityConfirmed", **_latest_reason(ev)}),
    "SpotCheckRejected": Step(("spot_check",), lambda ev: {
        "spot_checked": True, "spot_check_rejected": True, "_pending": "ProofRequested",
        **_latest_reason(ev)}),
    "EligibilityConfirmed": Step(("passed", "spot_check"), lambda ev: {
        "status": "confirmed", "confirmed_via": ev.payload["via"]}),
    "EnquiryRaised": Step(("manual_rejected", "terminated", "awaiting_proof"), then=_enquiry),
    "EnquiryAnswered": Step(_LIVE, lambda ev: (
        {"final_rejection": False, "_pending": "ProofRequested"} if ev.payload["reopened"]
        else {}), then=_enquiry),
    "EnquiryClosed": Step(STATUSES, then=_enquiry),
    "CaseVoided": Step(_LIVE, lambda ev: {
        "status": "voided", **_latest_reason(ev),
        "voided": {k: ev.payload[k] for k in ("reason", "by", "integrity")}},
        then=_case_voided),
    # the case's verification is over; the entry is for its history and audit
    "ScoresVoidedRecorded": Step(STATUSES),
}, ident=lambda case: case.application_id, check=_check, each=_history)


def proof_files(case: Case) -> list[dict]:
    """Every proof file the case has received, oldest first: its id (the file's SHA-256,
    how registration keeps it), name, type, size, when it came, its round and that round's
    decision."""
    received = [h["at"] for h in case.history if h["type"] == "ProofReceived"]
    out = []
    for n, (round_, at) in enumerate(zip(case.proof_rounds, received, strict=False), start=1):
        for f in round_.files:
            out.append({"file_id": f["sha256"], "name": f["name"],
                        "content_type": f["content_type"], "size": f["size"],
                        "uploaded_at": at, "round": n, "decision": round_.decision})
    return out


def fold(events) -> Case | None:
    """The case as its stream's events (``.type``, ``.payload``, optionally
    ``.stream_version`` and ``.metadata``) left it. ``ValueError`` on an edge the chart
    does not have: a stream that says so is corrupt, not something to paper over."""
    return CASE.fold(events)


# --- helpers --------------------------------------------------------------------------


def _require_aware(now: datetime):
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


def _ids(case_or_payload) -> dict:
    get = (case_or_payload.get if isinstance(case_or_payload, dict)
           else lambda k: getattr(case_or_payload, k))
    return {k: get(k) for k in _IDS}


def _event(case_or_payload, type_: str, **payload) -> NewEvent:
    ids = _ids(case_or_payload)
    return NewEvent(case_stream(ids["application_id"]), type_, {**ids, **payload})


def _proof_requested(case, cause: str, reason: str) -> NewEvent:
    return _event(case, "ProofRequested", cause=cause, reason=reason)


def _confirmed(case, via: str, spot_checked: bool) -> NewEvent:
    return _event(case, "EligibilityConfirmed", via=via, spot_checked=spot_checked)


def _reason(reason: str | None, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(f"{what} needs a reason", {"reason": "must not be blank"})
    if len(reason) > 500:
        raise ValidationFailed(f"{what}: the reason is too long",
                               {"reason": "must be at most 500 characters"})
    return reason


_STATUS_TEXT = {
    "auto_check": "is being checked automatically",
    "awaiting_proof": "is waiting for the candidate's proof",
    "awaiting_manual": "is waiting for a manual check",
    "manual_rejected": "was rejected by the manual check",
    "passed": "has passed and waits for the spot-check draw",
    "spot_check": "is drawn for the spot check",
    "confirmed": "is already confirmed",
    "terminated": "is terminated (final rejection)",
    "voided": "was voided by the exam authority (报名无效)",
}


def _refuse(case: Case, action: str) -> Refused:
    return Refused(
        f"cannot {action}: case {case.application_id} {_STATUS_TEXT[case.status]}",
        code="wrong_state",
    )


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


# --- auto check -----------------------------------------------------------------------


def auto_check(submitted: dict, rules: Rules, facts: dict, cutoff: date) -> tuple[bool, str, str]:
    """自动核查 of a commitment: ``(passed, rule, reason)``. Pure: ``facts`` come from
    ``reference.gather_facts``. Checks, first failure wins: the integrity archive, the
    education registry, then eligibility. Every education entry must be confirmed by the
    registry (学信网): an entry without a certificate number cannot be looked up, so it is as
    unconfirmed as one the registry has no record of or records otherwise; either way proof
    and the manual check decide, never the years alone. Reasons are in Chinese (the
    candidate reads them) and end with the rule's id."""
    candidate = submitted["candidate"]
    record = (facts or {}).get("integrity")
    if record:
        return (
            False,
            INTEGRITY_RULE,
            f"诚信档案中有您的有效记录（{record['record_id']}，{record['recorded_on']}记录），"
            f"不能适用告知承诺制，请提交证明材料，由报名点人工核查。[规则 {INTEGRITY_RULE}]",
        )
    registry = (facts or {}).get("education") or {}
    for entry in candidate.get("education") or ():
        problem = education_problem(entry, registry)
        if problem is not None:
            return (
                False,
                EDUCATION_RULE,
                f"学历未经学信网核验：{problem}。请提交学历证书等证明材料，由报名点人工核查。"
                f"[规则 {EDUCATION_RULE}]",
            )
    outcome = evaluate(rules, submitted["level"], candidate.get("education") or [],
                       candidate.get("work") or [], _as_date(cutoff))
    return outcome.passed, outcome.rule, outcome.reason


def education_problem(entry: dict, registry: dict) -> str | None:
    """Why the registry does not confirm one education entry (in Chinese), or None."""
    level = entry.get("level") or "（未填学历层次）"
    cert = entry.get("certificate_no")  # as entered: the key gather_facts looked it up by
    if not (cert or "").strip():
        return f"{level}学历（{entry.get('school') or '学校未填'}）没有填写证书编号，无法查询"
    found = registry.get(cert)
    if found is None:
        return f"学信网没有您名下{level}学历证书 {cert} 的记录"
    if found.get("level") != entry.get("level"):
        return f"学信网记录证书 {cert} 为{found.get('level')}，不是{level}"
    if found.get("major_category") != entry.get("major_category"):
        return (f"学信网记录证书 {cert} 的专业类别为"
                f"{CATEGORY_TEXT.get(found.get('major_category'), found.get('major_category'))}，"
                f"不是{CATEGORY_TEXT.get(entry.get('major_category'), entry.get('major_category'))}")
    return None


# --- commands -------------------------------------------------------------------------


#: the grounds of an exemption (免试), as the candidate reads them
EXEMPTION_GROUNDS = {"senior_title": "已取得高级专业技术职称",
                     "verifier_certificate": "已取得计量检定员证"}


def no_rules_reason(exam_year: int, level: str) -> str:
    """Why a pledge could not be checked automatically: the year has no rules (or none for
    the level). Chinese for the candidate, then the rule's id."""
    return (f"{exam_year}年度没有{level}级别的报考条件，无法自动核查；请提交学历和计量技术工作"
            f"证明材料，由报名点人工核查。[规则 {exam_year}.no-eligibility-rules]")


def open_case(submitted: dict, rules: Rules | None, facts: dict, cutoff: date,
              now: datetime, exam_year: int | None = None,
              draw_done: bool = False) -> list[NewEvent]:
    """Open the case of an ApplicationSubmitted (its payload) and decide how it proceeds:

    - an exemption claimed ⇒ ProofRequested(exemption_claimed);
    - no commitment ⇒ ProofRequested(no_commitment);
    - a commitment ⇒ the auto check: AutoCheckPassed, or AutoCheckFailed followed by
      ProofRequested(auto_check_failed) with the failure's reason.

    ``rules`` are the exam year's rules in force (None: the year has none). Without rules
    for the application's level, a commitment cannot be checked automatically: the case is
    opened all the same and sent to proof and the manual check, rule
    ``<exam_year>.no-eligibility-rules`` (never left without a case).

    ``draw_done``: the session's spot-check sample can take no more cases (drawn, or its
    window over); a case that passes the auto check then is confirmed at once, as the
    window's pass-through would have done (a consumer behind at that moment must not leave
    it passed for ever).
    """
    _require_aware(now)
    exam_year = exam_year if exam_year is not None else rules.exam_year if rules else None
    commitment = bool(submitted.get("commitment"))  # the signed pledge, or None
    exemption = submitted.get("exemption")
    events = [
        _event(
            submitted,
            "CaseOpened",
            registration_point=submitted["registration_point"],
            level=submitted["level"],
            commitment=commitment,
            exemption=exemption,
            candidate=submitted["candidate"],
            rules=rules.ref if rules is not None else None,
        )
    ]
    if exemption:
        # An exemption always needs proof (senior title, former 计量检定员证), which only a
        # person can judge; even with a commitment nothing runs automatically: the manual
        # check that judges the exemption's proof judges eligibility with it.
        # reasons reach the candidate's messages: Chinese (the cause is the code)
        events.append(_proof_requested(
            submitted,
            "exemption_claimed",
            f"申请免试科目{exemption['subject']}"
            f"（{EXEMPTION_GROUNDS.get(exemption['ground'], exemption['ground'])}）"
            f"需提交相关证明，由报名点与报考资格证明一并人工核查",
        ))
    elif not commitment:
        events.append(_proof_requested(
            submitted,
            "no_commitment",
            "未采用告知承诺制，学历和从事计量技术工作年限的证明材料由报名点人工核查",
        ))
    elif rules is None or submitted["level"] not in rules.level_names:
        reason = no_rules_reason(exam_year, submitted["level"])
        events.append(_event(submitted, "AutoCheckFailed",
                             rule=f"{exam_year}.no-eligibility-rules", reason=reason))
        events.append(_proof_requested(submitted, "auto_check_failed", reason))
    else:
        passed, rule, reason = auto_check(submitted, rules, facts, cutoff)
        if passed:
            events.append(_event(submitted, "AutoCheckPassed", rule=rule, reason=reason))
            if draw_done:  # no draw can sample it any more: it passes through at once
                events.append(_confirmed(submitted, "auto", False))
        else:
            events.append(_event(submitted, "AutoCheckFailed", rule=rule, reason=reason))
            events.append(_proof_requested(submitted, "auto_check_failed", reason))
    return events


def commitment_withdrawn(case: Case, now: datetime) -> list[NewEvent]:
    """撤回承诺: a case still on the commitment route goes to proof and the manual check."""
    _require_aware(now)
    if not case.commitment:
        raise Refused(f"case {case.application_id} has no commitment to withdraw",
                      code="wrong_state")
    if case.status not in ("auto_check", "passed"):
        raise _refuse(case, "withdraw the commitment")
    if case.passed_via == "manual":
        raise Refused(
            f"cannot withdraw the commitment: case {case.application_id} already passed the "
            f"manual check on proof",
            code="wrong_state",
        )
    return [
        _event(case, "CommitmentWithdrawnRecorded"),
        _proof_requested(case, "commitment_withdrawn",
                         "已撤回告知承诺，证明材料由报名点人工核查"),
    ]


def proof_received(case: Case, files: list[dict], now: datetime) -> list[NewEvent]:
    """提交证明材料: proof for a case waiting for it, or after a non-final rejection."""
    _require_aware(now)
    if case.status == "terminated":
        raise Refused(
            f"cannot accept proof: case {case.application_id} was finally rejected "
            f"(报名终止)",
            code="wrong_state",
        )
    if case.status not in ("awaiting_proof", "manual_rejected"):
        raise _refuse(case, "accept proof")
    if not files:
        raise ValidationFailed("proof needs at least one file", {"files": "must not be empty"})
    return [_event(case, "ProofReceived", files=[dict(f) for f in files])]


def manual_decision(case: Case, passed: bool, reason: str, staff_id: str, staff_point: str,
                    final: bool, now: datetime, in_service: bool,
                    draw_done: bool = False, hours: str | None = None) -> list[NewEvent]:
    """人工核查: a registration point's staff decide a case waiting for them.

    ``in_service``: whether ``now`` is within the point's service hours (the caller knows
    the session's windows). ``draw_done``: the session's spot-check draw already happened,
    so a pass is confirmed at once (not sampled ⇒ passes through). A case that came back
    through the spot check is confirmed at once too: it has already been drawn.
    ``hours``: the point's service hours as people read them (``describe_service``).
    """
    _require_aware(now)
    if staff_point != case.registration_point:
        raise Unauthorized(
            f"staff of point {staff_point} cannot decide cases of point "
            f"{case.registration_point}",
            code="wrong_point",
        )
    if not in_service:
        raise Refused(
            f"outside the registration point's service hours: point {case.registration_point} "
            f"decides manual checks only during its service hours"
            + (f" ({hours})" if hours else ""),
            {"service_hours": hours} if hours else None,
            code="out_of_service",
        )
    if case.status != "awaiting_manual":
        raise _refuse(case, "decide a manual check")
    what = "a manual check pass" if passed else "a manual check rejection"
    staff = {"registration_point": case.registration_point, "staff": staff_id,
             "reason": _reason(reason, what)}
    if not passed:
        return [_event(case, "ManualCheckRejected", **staff, final=bool(final))]
    events = [_event(case, "ManualCheckPassed", **staff)]
    if case.spot_check_rejected:
        events.append(_confirmed(case, "manual", True))
    elif draw_done:
        events.append(_confirmed(case, "manual", False))
    return events


def sample_size(rate: float, n: int) -> int:
    """How many of ``n`` passed cases a draw at ``rate`` selects: ``round(rate * n)``
    (half to even), at least 1 when ``rate > 0`` and ``n > 0``."""
    if not 0 <= rate <= 1:
        raise ValidationFailed("the spot-check rate must be between 0 and 1",
                               {"rate": "must be between 0 and 1"})
    k = round(rate * n)
    if rate > 0 and n > 0:
        k = max(k, 1)
    return min(k, n)


def require_first_draw(session_id: str, drawn_before: bool) -> None:
    """A session is drawn once: a second draw is a rule refusal (409 ``refused``), not bad
    input; the sample already taken stands."""
    if drawn_before:
        raise Refused(f"The spot check for session {session_id} has already been drawn; "
                      "the sample taken stands (抽查已完成).",
                      {"session_id": "already drawn"}, code="already_drawn")


def draw_sample(cases: list[Case], rate: float, seed: int,
                draw_id: str) -> tuple[list[str], dict[str, list[NewEvent]]]:
    """抽查: draw a reproducible sample of the ``passed`` cases.

    The passed cases, sorted by application id, are sampled with
    ``random.Random(seed).sample(ids, sample_size(rate, n))``: the same cases, rate and
    seed always select the same ones. A selected case gets SpotCheckSelected; every other
    passed case is confirmed (EligibilityConfirmed, ``spot_checked`` false). Cases in any
    other status are left alone. Returns (the selected ids, sorted; events per case id).
    """
    if not draw_id:
        raise ValidationFailed("a draw needs an id", {"draw_id": "must not be blank"})
    eligible = sorted((c for c in cases if c.status == "passed"),
                      key=lambda c: c.application_id)
    ids = [c.application_id for c in eligible]
    if len(set(ids)) != len(ids):
        raise ValueError("draw_sample got the same case twice")
    sessions = {c.session_id for c in eligible}
    if len(sessions) > 1:
        raise ValueError(f"draw_sample mixes sessions: {sorted(sessions)}")
    k = sample_size(rate, len(ids))
    selected = set(random.Random(seed).sample(ids, k))
    events: dict[str, list[NewEvent]] = {}
    for case in eligible:
        if case.application_id in selected:
            events[case.application_id] = [
                _event(case, "SpotCheckSelected", draw_id=draw_id, seed=seed, rate=rate)
            ]
        else:
            events[case.application_id] = [_confirmed(case, case.passed_via or "auto", False)]
    return sorted(selected), events


def spot_check_decision(case: Case, passed: bool, reason: str, by: str,
                        now: datetime) -> list[NewEvent]:
    """抽查复核: the exam authority's decision on a drawn case. A rejection sends the case
    back to proof and the manual check (状态设为 核查不通过)."""
    _require_aware(now)
    if case.status != "spot_check":
        raise _refuse(case, "decide a spot check")
    if not by:
        raise ValidationFailed("a spot-check decision needs who took it", {"by": "required"})
    if passed:
        return [
            _event(case, "SpotCheckPassed", by=by, reason=(reason or "").strip()
                   or "materials verified"),
            _confirmed(case, case.passed_via or "auto", True),
        ]
    reason = _reason(reason, "a spot-check rejection")
    return [
        _event(case, "SpotCheckRejected", by=by, reason=reason),
        _proof_requested(case, "spot_check_rejected", reason),
    ]


def pass_through(case: Case) -> list[NewEvent]:
    """The timer at the end of the spot-check window: a passed case never drawn is confirmed
    (not sampled ⇒ passes through). Anything else: nothing to do."""
    if case.status != "passed" or case.draw is not None:
        return []
    return [_confirmed(case, case.passed_via or "auto", False)]


# --- 疑问核实: enquiries ----------------------------------------------------------------


def _hhmm(t: time) -> str:
    return "24:00" if t == time.max else t.strftime("%H:%M")


def describe_service(point: RegistrationPoint, session: SessionDocument) -> str:
    """A point's service hours as a candidate or staff member reads them, e.g.
    ``09:30-11:30, 13:30-16:00 (Asia/Shanghai) during 网上报名, 资格核查 and 核对确认, not
    during 抽查复核``."""
    hours = ", ".join(f"{_hhmm(s)}-{_hhmm(e)}" for s, e in point.service_hours)
    windows = [WINDOW_LABELS.get(w, w) for w in point.service_windows if w in session.windows]
    during = (", ".join(windows[:-1]) + " and " + windows[-1]) if len(windows) > 1 else "".join(windows)
    text = f"{hours} ({session.timezone}) during {during}"
    if "spot_check" in session.windows:
        text += f", not during {WINDOW_LABELS['spot_check']}"
    return text


def _text(value: str | None, what: str, field_name: str, limit: int) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationFailed(f"{what} must not be blank", {field_name: "must not be blank"})
    if len(value) > limit:
        raise ValidationFailed(f"{what} is too long", {field_name: f"must be at most {limit} characters"})
    return value


def raise_enquiry(case: Case, account_id: str, enquiry_id: str, text: str, now: datetime,
                  confirmation: Window) -> list[NewEvent]:
    """疑问核实: the candidate questions the manual-check or spot-check rejection that stands
    on their case. Until 核对确认 (``confirmation``) closes; one open enquiry at a time; the
    case's registration point answers it."""
    _require_aware(now)
    if account_id != case.account_id:
        raise Unauthorized("You can only raise enquiries about your own application.",
                           {"session_id": "not your case"}, code="not_yours")
    if case.status == "voided":
        raise _refuse(case, "raise an enquiry")
    if now >= confirmation.end_exclusive:
        raise Refused(
            f"Enquiries about a manual-check or spot-check outcome must reach your registration "
            f"point before {confirmation.describe()} closes ({shanghai(confirmation.end)} "
            f"Asia/Shanghai); it is now {shanghai(now)}. After that the application is "
            f"unsuccessful (逾期视作报名不成功).",
            {"window": "confirmation", "closes": iso(confirmation.end)}, code="window_closed")
    open_ = case.open_enquiry
    if open_ is not None:
        raise Refused(f"Your enquiry {open_['enquiry_id']} (raised {open_['raised_at']}) is still "
                      f"waiting for an answer from registration point {case.registration_point}; "
                      f"one open enquiry at a time.", {"enquiry_id": open_["enquiry_id"]},
                      code="enquiry_open")
    about = questionable(case)
    if about is None:
        raise Refused(
            f"There is no manual-check or spot-check rejection to question: case "
            f"{case.application_id} {_STATUS_TEXT[case.status]}. Enquiries (疑问核实) are about "
            f"a rejection that stands.", {"status": case.status}, code="nothing_to_question")
    text = _text(text, "An enquiry", "text", 2000)
    return [_event(case, "EnquiryRaised", enquiry_id=enquiry_id,
                   registration_point=case.registration_point, about=about, text=text,
                   raised_at=iso(now))]


def _reopen_reason(point: str, answer: str) -> str:
    short = answer if len(answer) <= 300 else answer[:299] + "…"
    return (f"报名点{point}在疑问核实后重新开启核查：请于核对确认截止前重新提交证明材料，"
            f"由报名点人工核查。答复：{short}")


def answer_enquiry(case: Case, enquiry_id: str, answer: str, reopen: bool, staff_id: str,
                   staff_point: str, now: datetime, in_service: bool,
                   hours: str | None = None) -> list[NewEvent]:
    """Staff of the case's registration point answer an open enquiry, in their service
    hours. ``reopen``: the rejection does not stand; the case goes back to proof and the
    manual check (ProofRequested, cause ``enquiry_reopened``), even after a final rejection.
    Only while the questioned rejection still stands (the case moved on otherwise)."""
    _require_aware(now)
    if staff_point != case.registration_point:
        raise Unauthorized(
            f"staff of point {staff_point} cannot answer enquiries about cases of point "
            f"{case.registration_point}", code="wrong_point")
    if not in_service:
        raise Refused(
            f"outside the registration point's service hours: point {case.registration_point} "
            f"answers enquiries only during its service hours" + (f" ({hours})" if hours else ""),
            {"service_hours": hours} if hours else None, code="out_of_service")
    asked = case.enquiry(enquiry_id)
    if asked is None:
        raise Refused(f"case {case.application_id} has no enquiry {enquiry_id}", code="not_found")
    if asked["status"] != "open":
        raise Refused(f"enquiry {enquiry_id} is already {asked['status']}"
                      + (f" by {asked['staff']} at {asked['answered_at']}" if asked["staff"] else ""),
                      {"enquiry_id": asked["status"]}, code="enquiry_closed")
    if case.status == "voided":
        raise _refuse(case, "answer an enquiry")
    if reopen and questionable(case) is None:
        raise Refused(
            f"cannot reopen: case {case.application_id} {_STATUS_TEXT[case.status]}, so the "
            f"questioned outcome no longer stands; answer without reopening",
            {"reopen": case.status}, code="wrong_state")
    answer = _text(answer, "An answer", "answer", 2000)
    events = [_event(case, "EnquiryAnswered", enquiry_id=enquiry_id,
                     registration_point=case.registration_point, staff=staff_id, answer=answer,
                     reopened=bool(reopen), answered_at=iso(now))]
    if reopen:
        events.append(_proof_requested(case, "enquiry_reopened",
                                       _reopen_reason(case.registration_point, answer)))
    return events


def close_enquiry(case: Case) -> list[NewEvent]:
    """When 核对确认 closes, an enquiry still open is closed unanswered (逾期视作报名不成功)."""
    open_ = case.open_enquiry
    if open_ is None:
        return []
    return [_event(case, "EnquiryClosed", enquiry_id=open_["enquiry_id"],
                   reason="核对确认截止前未获答复，逾期视作报名不成功")]


# --- 报名无效 / 成绩无效: voiding and the integrity archive ----------------------------------


def integrity_record(candidate: dict, reason: str, source: str, now: datetime) -> NewEvent:
    """诚信档案: a live record for the candidate's ID, one per ``source``."""
    _require_aware(now)
    record_id = integrity_record_id(source)
    return NewEvent(integrity_stream(record_id), "IntegrityRecordWritten", {
        "record_id": record_id, "id_type": candidate["id_type"],
        "id_number": (candidate["id_number"] or "").strip().upper(), "reason": reason,
        "source": source, "written_at": iso(now)})


def void_case(case: Case, reason: str, by: str, integrity: bool) -> list[NewEvent]:
    """报名无效: the exam authority voided the registration; the case is closed for good
    (an open enquiry with it)."""
    if case.status == "voided":
        raise _refuse(case, "void the case")
    open_ = case.open_enquiry
    return [_event(case, "CaseVoided", reason=_reason(reason, "voiding"), by=by,
                   integrity=bool(integrity),
                   enquiry_id=open_["enquiry_id"] if open_ else None)]


def registration_voided(case: Case | None, voided: dict, now: datetime,
                        record_exists: bool) -> list[NewEvent]:
    """Registration's RegistrationVoided (its payload): close the case and, with
    ``integrity``, write the integrity record from the candidate it names (once:
    ``record_exists`` when it was written before)."""
    events = [] if case is None else void_case(case, voided["reason"], voided["by"],
                                                voided["integrity"])
    if voided["integrity"] and not record_exists:
        events.append(integrity_record(
            voided["candidate"], f"报名无效: {voided['reason']}",
            f"RegistrationVoided {voided['application_id']}", now))
    return events


def scores_voided(case: Case | None, voided: dict, now: datetime,
                  record_exists: bool) -> list[NewEvent]:
    """Scoring's ScoresVoided (its payload): with ``integrity``, the integrity record for
    the candidate on this application's case. Without it, nothing is verification's."""
    if not voided.get("integrity"):
        return []
    if case is None:
        raise Refused(f"no verification case for application {voided['application_id']}: "
                      f"cannot tell whose integrity record to write", code="not_found")
    if record_exists:
        return []
    return [
        _event(case, "ScoresVoidedRecorded", reason=voided["reason"], by=voided["by"],
               integrity=True),
        integrity_record(case.candidate, f"成绩无效: {voided['reason']}",
                         f"ScoresVoided {voided['application_id']}", now),
    ]


# --- 报考条件: the eligibility rules of an exam year, as versioned documents ---------------
#
# One stream per exam year (``rules-<year>``). The file shipped with the code is the year's
# version 0 (``rules.shipped_rules``); each document the exam authority loads is the next
# version, and the latest is in force: a case records the version it was opened under.
#
#     none ──EligibilityRulesLoaded (version 1)──► loaded ──EligibilityRulesLoaded (n+1)──┐
#                                                    ▲                                    │
#                                                    └────────────────────────────────────┘
#
# The fold refuses a version out of sequence and a document of another year.

RULES_STATUSES = ("none", "loaded")
_RULES_FROM = {"EligibilityRulesLoaded": ("none", "loaded")}


@dataclass
class RuleBook:
    """The versions of one exam year's rules loaded by the authority, oldest first."""

    exam_year: int
    status: str = "none"
    versions: list[dict] = field(default_factory=list)  # the events' payloads
    rules: Rules | None = None  # the latest version, as a table

    @property
    def latest(self) -> dict | None:
        return self.versions[-1] if self.versions else None


def rules_stream(exam_year) -> str:
    return f"rules-{int(exam_year)}"


def fold_rule_book(events) -> RuleBook | None:
    """The rule book as its stream's events left it; ``ValueError`` on a move the chart
    does not have (a version out of sequence, a document of another year)."""
    book = None
    for event in events:
        if event.type not in _RULES_FROM:
            continue  # a type added later changes nothing this code knows about
        p = event.payload
        if book is None:
            book = RuleBook(exam_year=p["exam_year"])
        if book.status not in _RULES_FROM[event.type]:
            raise ValueError(f"{event.type} cannot follow status {book.status!r} "
                             f"(rules of {book.exam_year})")
        if p["exam_year"] != book.exam_year:
            raise ValueError(f"rules of {p['exam_year']} in the stream of {book.exam_year}")
        if p["version"] != len(book.versions) + 1:
            raise ValueError(f"rules of {book.exam_year}: version {p['version']} after "
                             f"{len(book.versions)}")
        book.versions.append(dict(p))
        book.status = "loaded"
    if book is not None:
        book.rules = rules_from_document(book.latest["document"], book.latest["version"])
    return book


def rules_in_force(book: RuleBook | None, shipped: Rules | None) -> Rules | None:
    """The latest version the authority loaded, else the shipped default, else None."""
    return book.rules if book is not None and book.rules is not None else shipped


def load_rules_version(book: RuleBook | None, shipped: Rules | None, document: dict,
                       text: str, by: str, reason: str | None, now: datetime,
                       session_levels: dict[str, set[str]]) -> list[NewEvent]:
    """The authority loads a checked rules document (``rules.check_rules_document``) as the
    year's next version. The same rules as those in force (same digest) add nothing.
    ``session_levels``: the levels of each session of that exam year; a version that leaves
    one of them without rules is refused (its applications could not be checked)."""
    _require_aware(now)
    year = document["exam_year"]
    if book is not None and book.exam_year != year:
        raise ValueError(f"rules of {year} offered to the book of {book.exam_year}")
    current = rules_in_force(book, shipped)
    digest = document_digest(document)
    if current is not None and current.digest == digest:
        return []
    lacking = {sid: sorted(levels - set(document["levels"]))
               for sid, levels in sorted(session_levels.items())}
    lacking = {sid: levels for sid, levels in lacking.items() if levels}
    if lacking:
        which = "; ".join(f"{sid}: {', '.join(levels)}" for sid, levels in lacking.items())
        raise Refused(
            f"新版报考条件缺少已加载考试计划的级别，不能加载（{which}）。The new rules lack "
            f"levels that sessions of {year} offer ({which}).",
            {"levels": f"须包含 {which} (must cover them)"}, code="levels_missing")
    version = len(book.versions) + 1 if book is not None else 1
    return [NewEvent(rules_stream(year), "EligibilityRulesLoaded", {
        "exam_year": year, "version": version, "document": document, "yaml": text,
        "digest": digest, "by": by, "reason": reason, "loaded_at": iso(now),
        "replaces": current.ref if current is not None else None})]

