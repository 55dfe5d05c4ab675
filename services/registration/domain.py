"""The registration domain (报名): exam sessions, candidates as registration knows them, and
the Application aggregate from 网上报名 to 核对确认. Pure: time and outside facts come in as
arguments, decisions go out as events.

Application status follows the seed's chart; verification's outcomes are recorded on the
application's own stream (``VerificationRecorded``), and so are the candidate's enquiries
(疑问核实) and their answers (``EnquiryRecorded``), so the application's stream is its whole
history and the read model is a fold of this service's log alone.

Two edges beyond the chart:

- 疑问核实: an answer to an enquiry may reopen the case (verification's ProofRequested with
  cause ``enquiry_reopened``). A terminated application (报名终止) then asks for proof again,
  but only while confirmation is open: once 核对确认 has closed (its deadline has run) every
  application has ended and stays ended; a lapsed, confirmed or voided one is never reopened.
  Proof after a reopening is accepted until confirmation closes. An open enquiry does not
  keep an application alive: when confirmation closes it ends like any unresolved one,
  unsuccessful (报名不成功).
- 报名无效: the exam authority voids a registration in any status but voided
  (``RegistrationVoided``, with the candidate's identity for the integrity archive); it is
  final, every further candidate action is refused, and voiding it again is refused too
  (a second reason or integrity choice would otherwise be silently lost).
"""

from dataclasses import dataclass, field
from datetime import datetime

from shared.clock import iso, shanghai
from shared.deadlines import deadline_stream  # noqa: F401 (the one naming, re-exported)
from shared.errors import NotFound, Refused, Unauthorized, ValidationFailed
from shared.events import NewEvent
from shared.evolve import Evolve, Step
from shared.session import WINDOW_LABELS, SessionDocument, Window, require_open

STATUS_LABELS = {
    "submitted": "已提交，等待资格核查",
    "auto_passed": "自动核查通过",
    "auto_failed": "自动核查不通过",
    "commitment_withdrawn": "已撤回承诺",
    "proof_requested": "请提交证明材料",
    "proof_submitted": "证明材料已提交，等待人工核查",
    "manual_passed": "人工核查通过",
    "manual_rejected": "人工核查不通过",
    "spot_check": "抽查复核中",
    "spot_passed": "抽查复核通过",
    "spot_rejected": "抽查复核不通过",
    "eligible": "资格核查通过，请在核对确认时段内确认",
    "confirmed": "已核对确认，报名成功",
    "lapsed": "逾期未确认，视为放弃报名",
    "terminated": "报名终止",
    "voided": "报名无效",
}
FINAL = {"confirmed", "lapsed", "terminated", "voided"}
UNSUCCESSFUL = "报名不成功"  # how an application unresolved at the close of confirmation ends

# verification outcome -> application status
OUTCOME_STATUS = {
    "AutoCheckPassed": "auto_passed",
    "AutoCheckFailed": "auto_failed",
    "ProofRequested": "proof_requested",
    "ManualCheckPassed": "manual_passed",
    "ManualCheckRejected": "manual_rejected",
    "SpotCheckSelected": "spot_check",
    "SpotCheckPassed": "spot_passed",
    "SpotCheckRejected": "spot_rejected",
    "EligibilityConfirmed": "eligible",
}


def session_stream(session_id: str) -> str:
    return f"session-{session_id}"


def candidate_stream(account_id: str) -> str:
    return f"candidate-{account_id}"


def application_id(session_id: str, account_id: str) -> str:
    return f"{session_id}.{account_id}"


def application_stream(app_id: str) -> str:
    return f"application-{app_id}"


# -- exam sessions -----------------------------------------------------------------------

def schedule_session(doc: SessionDocument, current_version: int) -> list[NewEvent]:
    if current_version:
        raise Refused(f"Session {doc.session_id} is already scheduled; amend its timetable instead.",
                      {"session_id": "already scheduled"})
    return [NewEvent(session_stream(doc.session_id), "ExamSessionScheduled",
                     {"session_id": doc.session_id, "document": doc.to_dict()})]


def require_eligibility_rules(doc: SessionDocument, rule_levels: list[str] | None) -> None:
    """报考条件: a session is scheduled only if its exam year has eligibility rules for
    every level it offers (``rule_levels``: the levels of the rules in force, None: the year
    has none); otherwise its applications could not be checked. Refused with what to do."""
    year = doc.exam_year
    if rule_levels is None:
        raise Refused(
            f"{year}年度没有报考条件，不能加载考试计划 {doc.session_id}：请先加载该年度的报考条件"
            f"（kaowu rules load {year} FILE，或 PUT /api/authority/rules/{year}）。"
            f"No eligibility rules for exam year {year}: load them first.",
            {"exam_year": f"{year}年度没有报考条件 (no eligibility rules for {year})"},
            code="no_rules")
    missing = [code for code in doc.levels if code not in rule_levels]
    if missing:
        raise Refused(
            f"{year}年度的报考条件没有级别 {', '.join(missing)}，不能加载考试计划 {doc.session_id}："
            f"请先加载包含这些级别的报考条件。The eligibility rules of {year} have no rules for "
            f"level(s) {', '.join(missing)}.",
            {"levels": f"{year}年度报考条件缺少 {', '.join(missing)} (no rules for them)"},
            code="no_rules")


def fold_session(events) -> SessionDocument | None:
    doc = None
    for ev in events:
        if ev.type == "ExamSessionScheduled":
            doc = SessionDocument.from_dict(ev.payload["document"])
        elif ev.type == "TimetableAmended" and doc is not None:
            doc = doc.amended(ev.payload["window"], datetime.fromisoformat(ev.payload["start"]),
                              datetime.fromisoformat(ev.payload["end"]))
    return doc


def amend_timetable(doc: SessionDocument, window: str, start: datetime, end: datetime,
                    reason: str, now: datetime) -> list[NewEvent]:
    """调整时间安排: move a window that has not closed, to times still ahead. A closed
    window's deadline effects have run (lapsed, forfeited) and what happened in it stands;
    a window may not open or close in the past (a window already open keeps its start)."""
    doc.amended(window, start, end)  # refuses a window that breaks the document
    old = doc.window(window)
    head = f"{WINDOW_LABELS[window]} ({window}) 窗口"
    if now >= old.end_exclusive:
        raise Refused(
            f"{head}已于 {shanghai(old.end)} 结束，不能再调整：结束时的处理已经执行，期间发生的事不能"
            f"改写。The {window} window closed at {shanghai(old.end)}; a closed window cannot "
            "be amended.", {"window": f"已结束 (closed at {shanghai(old.end)})"}, code="window_closed")
    if end < now:
        raise Refused(
            f"{head}的截止时间不能改到过去：{shanghai(end)} 早于现在 {shanghai(now)}。The {window} "
            f"window cannot end in the past ({shanghai(end)} is before now, {shanghai(now)}).",
            {"end": f"早于现在 (before now, {shanghai(now)})"}, code="amendment_in_past")
    if start < now and start != old.start:
        raise Refused(
            f"{head}的开始时间不能改到过去：{shanghai(start)} 早于现在 {shanghai(now)}"
            f"{'（窗口已开放，请保留原开始时间 ' + shanghai(old.start) + '）' if old.start <= now else ''}。"
            f"The {window} window cannot be moved to start in the past ({shanghai(start)} is "
            f"before now, {shanghai(now)}).",
            {"start": f"早于现在 (before now, {shanghai(now)})"}, code="amendment_in_past")
    return [NewEvent(session_stream(doc.session_id), "TimetableAmended",
                     {"session_id": doc.session_id, "window": window, "start": iso(start),
                      "end": iso(end), "reason": reason})]


# -- candidates (from the account service's events) --------------------------------------

@dataclass
class Candidate:
    account_id: str
    name: str = ""
    id_type: str = ""
    id_number: str = ""
    completeness: int = 0
    sections: dict = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.completeness == 100

    def snapshot(self) -> dict:
        edu = self.sections.get("education") or {}
        return {"name": self.name, "id_type": self.id_type, "id_number": self.id_number,
                "education": list(edu.get("education") or []),
                "degrees": list(edu.get("degrees") or []),
                "work": list((self.sections.get("work") or {}).get("entries") or [])}


def candidate_registered(upstream) -> list[NewEvent]:
    """The account service's AccountRegistered, as registration keeps it."""
    p = upstream.payload
    return [NewEvent(candidate_stream(p["account_id"]), "CandidateRegistered",
                     {k: p[k] for k in ("account_id", "name", "id_type", "id_number")})]


def candidate_profile_updated(upstream) -> list[NewEvent]:
    """The account service's ProfileUpdated, as registration keeps it."""
    p = upstream.payload
    return [NewEvent(candidate_stream(p["account_id"]), "CandidateProfileUpdated",
                     {k: p[k] for k in ("account_id", "section", "data", "completeness")})]


def fold_candidate(events) -> Candidate | None:
    c = None
    for ev in events:
        p = ev.payload
        if ev.type == "CandidateRegistered":
            c = Candidate(p["account_id"], p["name"], p["id_type"], p["id_number"])
        elif ev.type == "CandidateProfileUpdated" and c is not None:
            c.sections[p["section"]] = p["data"]
            c.completeness = p["completeness"]
    return c


# -- applications ------------------------------------------------------------------------

@dataclass
class Application:
    application_id: str
    account_id: str
    session_id: str
    version: int = 0
    level: str = ""
    subjects: list = field(default_factory=list)
    exemption: dict | None = None
    registration_point: str = ""
    commitment: dict | None = None
    candidate: dict = field(default_factory=dict)
    status: str = "submitted"
    reason: str = ""
    proof_cause: str | None = None
    proof_rounds: int = 0
    open_enquiry: str | None = None  # the enquiry id waiting for the point's answer
    voided: dict | None = None  # {"reason", "by", "integrity", "voided_at"} (报名无效)

    @property
    def ids(self):
        return {"application_id": self.application_id, "account_id": self.account_id,
                "session_id": self.session_id}


def _submitted(ev) -> Application:
    p = ev.payload
    return Application(p["application_id"], p["account_id"], p["session_id"], level=p["level"],
                       subjects=list(p["subjects"]), exemption=p["exemption"],
                       registration_point=p["registration_point"], commitment=p["commitment"],
                       candidate=p["candidate"])


def _outcome(ev) -> dict:
    p = ev.payload
    out = {"status": OUTCOME_STATUS[p["outcome"]]}
    if p.get("reason"):
        out["reason"] = p["reason"]
    if p["outcome"] == "ProofRequested":
        out["proof_cause"] = p.get("cause")
    return out


def _outcome_edge(app: Application, ev) -> None:
    """A final application records verification only when an enquiry's answer reopened a
    terminated one (``reopens``)."""
    if app.status in FINAL and not (app.status == "terminated"
                                    and ev.payload["outcome"] == "ProofRequested"
                                    and ev.payload.get("cause") == "enquiry_reopened"):
        raise ValueError(f"VerificationRecorded {ev.payload['outcome']} cannot follow status "
                         f"{app.status!r} (application {app.application_id})")


def _proof_round(app: Application, ev) -> None:
    app.proof_rounds += 1


_LIVE = tuple(s for s in STATUS_LABELS if s not in FINAL)

# the Application's evolve: event type -> its step; the fold and the read model both use it
APPLICATION = Evolve("application", {
    "ApplicationSubmitted": Step.opening(_submitted),
    "CommitmentWithdrawn": Step(("submitted", "auto_passed"),
                                lambda ev: {"status": "commitment_withdrawn", "commitment": None}),
    "ProofSubmitted": Step(("proof_requested", "manual_rejected"),
                           lambda ev: {"status": "proof_submitted"}, then=_proof_round),
    "VerificationRecorded": Step((*_LIVE, "terminated"), _outcome, then=_outcome_edge),
    "ApplicationConfirmed": Step(("eligible",), lambda ev: {"status": "confirmed"}),
    "ApplicationLapsed": Step(_LIVE, lambda ev: {"status": "lapsed",
                                                 "reason": ev.payload["reason"]}),
    "RegistrationTerminated": Step(_LIVE, lambda ev: {"status": "terminated",
                                                      "reason": ev.payload["reason"]}),
    "RegistrationVoided": Step(tuple(s for s in STATUS_LABELS if s != "voided"), lambda ev: {
        "status": "voided", "reason": ev.payload["reason"],
        "voided": {k: ev.payload[k] for k in ("reason", "by", "integrity", "voided_at")}}),
    "EnquiryRecorded": Step(tuple(s for s in STATUS_LABELS if s != "voided"), lambda ev: {
        "open_enquiry": ev.payload["enquiry_id"] if ev.payload["kind"] == "raised" else None}),
}, ident=lambda app: app.application_id)


def fold_application(events) -> Application | None:
    """The application as its stream left it; ``ValueError`` on a move the chart does not
    have."""
    return APPLICATION.fold(events)


def status_label(app: Application) -> str:
    if app.status == "lapsed" and app.reason.startswith(UNSUCCESSFUL):
        return f"{UNSUCCESSFUL}（核对确认截止时资格核查仍未完成）"
    return STATUS_LABELS[app.status]


def submit(session: SessionDocument, candidate: Candidate | None, account_id: str, data: dict,
           now: datetime, integrity_live: bool, existing: Application | None) -> list[NewEvent]:
    """网上报名. ``data``: level, subjects, exemption ({ground}|None), registration_point,
    commitment ({pledge_version, signed_name}|None), all validated for shape."""
    require_open(session, "application", now, "Applying")
    if existing is not None:
        raise Refused("You have already applied for this exam session; one application per candidate.",
                      {"application_id": existing.application_id})
    if candidate is None or not candidate.complete:
        raise Refused("Your account information must be 100% complete before you can apply "
                      "(账号信息完整度为100%时才可进入考试报名).",
                      {"profile": f"{candidate.completeness if candidate else 0}% complete"})
    problems = {}
    level = session.levels.get(data["level"])
    if level is None:
        problems["level"] = f"one of {sorted(session.levels)}"
    exemption = data.get("exemption")
    exempt_subject = None
    if level is not None and exemption:
        exempt_subject = level.exemptions.get(exemption["ground"])
        if exempt_subject is None:
            problems["exemption"] = (f"{level.name} allows exemption only on the grounds "
                                     f"{sorted(level.exemptions)}")
    subjects = list(data.get("subjects") or [])
    if level is not None:
        allowed = [s for s in level.subjects if s != exempt_subject]
        if not subjects:
            subjects = allowed
        bad = [s for s in subjects if s not in allowed]
        if bad:
            problems["subjects"] = f"not open to this application: {bad}; choose from {allowed}"
        if len(set(subjects)) != len(subjects):
            problems["subjects"] = "a subject is listed twice"
    if data["registration_point"] not in session.points:
        problems["registration_point"] = f"one of {sorted(session.points)}"
    commitment = data.get("commitment")
    if commitment:
        if commitment["pledge_version"] != session.pledge_version:
            problems["commitment.pledge_version"] = (f"the pledge in force is version "
                                                     f"{session.pledge_version}; read and sign that one")
        if commitment["signed_name"].strip() != candidate.name:
            problems["commitment.signed_name"] = "sign the pledge personally, with your own name as registered"
    if problems:
        raise ValidationFailed("The application cannot be accepted as it stands.", problems)
    if commitment and integrity_live:
        raise Refused("The commitment scheme (告知承诺制) is not open to candidates with a live record "
                      "in the integrity archive (诚信档案); apply without it and submit proof.",
                      {"commitment": "not available: integrity record"})
    app_id = application_id(session.session_id, account_id)
    return [NewEvent(application_stream(app_id), "ApplicationSubmitted", {
        "application_id": app_id, "account_id": account_id, "session_id": session.session_id,
        "level": level.code, "subjects": [s for s in level.subjects if s in subjects],
        "exemption": ({"subject": exempt_subject, "ground": exemption["ground"]}
                      if exempt_subject else None),
        "registration_point": data["registration_point"],
        "commitment": ({"pledge_version": commitment["pledge_version"],
                        "signed_name": commitment["signed_name"].strip(), "signed_at": iso(now)}
                       if commitment else None),
        "candidate": candidate.snapshot(),
        "submitted_at": iso(now),
    })]


def _require(app: Application | None) -> Application:
    if app is None:
        raise NotFound("You have no application for this exam session.", {"application": "none"})
    if app.status == "voided":
        raise Refused(f"This registration was voided by the exam authority (报名无效): "
                      f"{app.reason}. Nothing more can be done with it.", {"status": "voided"})
    return app


def withdraw_commitment(session: SessionDocument, app: Application | None, now) -> list[NewEvent]:
    """撤回承诺: back to proof and manual check."""
    app = _require(app)
    require_open(session, "verification", now, "Withdrawing a commitment")
    if not app.commitment:
        raise Refused("This application was not made under the commitment scheme.", {"commitment": "none"})
    # once proof is asked for, withdrawing the pledge changes nothing
    if app.status not in ("submitted", "auto_passed"):
        raise Refused(f"A commitment can no longer be withdrawn: the application is "
                      f"{STATUS_LABELS[app.status]}.", {"status": app.status})
    return [NewEvent(application_stream(app.application_id), "CommitmentWithdrawn",
                     {**app.ids, "withdrawn_at": iso(now)})]


def proof_window(session: SessionDocument, app: Application) -> str:
    """Proof is due in the verification window; after a spot-check rejection, or a case
    reopened by an enquiry's answer, it may come until confirmation closes (the seed:
    settle it with the point before then)."""
    return ("confirmation" if app.proof_cause in ("spot_check_rejected", "enquiry_reopened")
            else "verification")


def submit_proof(session: SessionDocument, app: Application | None, files: list[dict],
                 now) -> list[NewEvent]:
    """提交证明材料. ``files``: [{sha256, name, content_type, size}] already checked."""
    app = _require(app)
    # only once verification's request is recorded: proof must answer a request, or a
    # second proof could overtake the request it answers
    if app.status not in ("proof_requested", "manual_rejected"):
        raise Refused(f"No proof is asked of this application now: it is {STATUS_LABELS[app.status]}.",
                      {"status": app.status})
    window = proof_window(session, app)
    if window == "confirmation":
        start, end = session.window("verification").start, session.window("confirmation").end
        if not Window("proof", start, end).contains(now):
            after = ("a spot-check rejection" if app.proof_cause == "spot_check_rejected"
                     else "a reopening on your enquiry")
            raise Refused(f"After {after}, proof is accepted from {shanghai(start)} until "
                          f"confirmation closes at {shanghai(end)} (Asia/Shanghai); it is now "
                          f"{shanghai(now)}.", {"window": "confirmation", "closes": iso(end)})
    else:
        require_open(session, "verification", now, "Submitting proof")
    return [NewEvent(application_stream(app.application_id), "ProofSubmitted",
                     {**app.ids, "files": files, "submitted_at": iso(now)})]


def confirm(session: SessionDocument, app: Application | None, now) -> list[NewEvent]:
    """核对确认: only in its window, only once eligibility is confirmed. No fee."""
    app = _require(app)
    require_open(session, "confirmation", now, "Confirming an application")
    if app.status == "confirmed":
        raise Refused("This application is already confirmed.", {"status": app.status})
    if app.status != "eligible":
        raise Refused(f"Only an application whose eligibility is confirmed can be confirmed; this one "
                      f"is {STATUS_LABELS[app.status]}. Contact your registration point before "
                      f"confirmation closes.", {"status": app.status})
    return [NewEvent(application_stream(app.application_id), "ApplicationConfirmed", {
        **app.ids, "level": app.level, "subjects": app.subjects, "exemption": app.exemption,
        "registration_point": app.registration_point,
        "candidate": {k: app.candidate[k] for k in ("name", "id_type", "id_number")},
        "confirmed_at": iso(now)})]


def reopens(app: Application, upstream, confirmation_closed: bool) -> bool:
    """An enquiry's answer reopened the case of a terminated application, and confirmation
    has not closed yet: the application asks for proof again."""
    return (upstream.type == "ProofRequested"
            and upstream.payload.get("cause") == "enquiry_reopened"
            and app.status == "terminated" and not confirmation_closed)


def record_enquiry(app: Application | None, upstream) -> list[NewEvent]:
    """Verification's EnquiryRaised or EnquiryAnswered, recorded for the application's
    history (a voided application never changes again)."""
    if app is None or app.status == "voided":
        return []
    p = upstream.payload
    raised = upstream.type == "EnquiryRaised"
    return [NewEvent(application_stream(app.application_id), "EnquiryRecorded", {
        "application_id": app.application_id, "enquiry_id": p["enquiry_id"],
        "kind": "raised" if raised else "answered", "about": p.get("about"),
        "text": p["text"] if raised else p["answer"], "reopened": p.get("reopened"),
        "at": upstream.metadata.get("occurred_at")})]


def record_outcome(app: Application | None, upstream,
                   confirmation_closed: bool = False) -> list[NewEvent]:
    """A verification outcome (``OUTCOME_STATUS``), recorded on the application with its
    consequences. ``confirmation_closed``: the close of 核对确认 has run for the session
    (nothing reopens after it)."""
    if app is None or app.status == "voided":
        return []  # a voided application never changes again
    p = upstream.payload
    if app.status in FINAL and not reopens(app, upstream, confirmation_closed):
        return []
    events = [NewEvent(application_stream(app.application_id), "VerificationRecorded", {
        "application_id": app.application_id, "outcome": upstream.type,
        "reason": p.get("reason") or "", "rule": p.get("rule"), "cause": p.get("cause"),
        "at": upstream.metadata.get("occurred_at")})]
    if upstream.type == "ManualCheckRejected" and p.get("final"):
        events.append(NewEvent(application_stream(app.application_id), "RegistrationTerminated",
                               {**app.ids, "reason": f"人工核查未通过，报名终止：{p['reason']}"}))
    return events


def close_confirmation(session: SessionDocument, apps: list[Application]) -> list[NewEvent]:
    """When 核对确认 closes: no late confirmation. Every open application ends here, an
    open enquiry (疑问核实) or not: unresolved ones are unsuccessful (报名不成功)."""
    out = []  # the record that it ran is the deadline mechanism's (shared.deadlines)
    for app in apps:
        if app.status in FINAL:
            continue
        stream = application_stream(app.application_id)
        # the candidate reads these (their application): Chinese; the event type is the code
        enquiry = (f"；您的疑问（{app.open_enquiry}）截止时仍未办结，疑问须在此前核实"
                   if app.open_enquiry else "")
        if app.status == "manual_rejected":
            out.append(NewEvent(stream, "RegistrationTerminated", {
                **app.ids, "reason": f"{UNSUCCESSFUL}：人工核查未通过，核对确认截止前未提交新的"
                                     f"证明材料{enquiry}，逾期视作报名不成功"}))
        elif app.status == "eligible":
            out.append(NewEvent(stream, "ApplicationLapsed", {
                **app.ids, "reason": "核对确认截止前未完成核对确认，逾期视为放弃报名"}))
        else:
            out.append(NewEvent(stream, "ApplicationLapsed", {
                **app.ids, "reason": f"{UNSUCCESSFUL}：核对确认截止时资格核查仍未完成{enquiry}，"
                                     f"逾期视作报名不成功"}))
    return out


def void_registration(app: Application | None, by: str, reason: str, integrity: bool,
                      now: datetime) -> list[NewEvent]:
    """报名无效: the exam authority voids a registration, in any status but voided, for a
    stated reason; ``integrity`` asks for an integrity-archive record (诚信档案)."""
    if app is None:
        raise NotFound("No such application.", {"application_id": "not found"})
    if app.status == "voided":
        v = app.voided
        raise Refused(f"This registration was already voided at {v['voided_at']} by {v['by']}: "
                      f"{v['reason']}.", {"status": "voided"})
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Voiding a registration needs a reason.", {"reason": "must not be blank"})
    return [NewEvent(application_stream(app.application_id), "RegistrationVoided", {
        **app.ids, "reason": reason, "by": by, "integrity": bool(integrity),
        "candidate": {k: app.candidate[k] for k in ("name", "id_type", "id_number")},
        "voided_at": iso(now)})]


# -- staff and the authority looking at a candidate's documents (audited) ----------------
# Staff of the application's own point may see its proof, the candidate's profile and
# photo; the exam authority its proof. Every look is a DocumentViewed event (in a stream
# of its own per application, so looking never races the candidate's own commands).

# who may look at which document of a candidate's application
VIEWERS = {"proof": ("staff", "authority"), "profile": ("staff",), "photo": ("staff",)}


def views_stream(app_id: str) -> str:
    return f"views-{app_id}"


def may_view(app: Application | None, viewer: dict, document: str) -> Application:
    """The application if ``viewer`` ({staff_id, role, registration_point}) may see its
    ``document``; ``NotFound`` without one, ``Unauthorized`` (403 at the edge) otherwise."""
    if app is None:
        raise NotFound("No such application.", {"application_id": "not found"})
    if viewer["role"] not in VIEWERS[document]:
        raise Unauthorized(f"The candidate's {document} is shown to the staff of their "
                           f"registration point only.", code="not_yours")
    if viewer["role"] == "staff" and viewer["registration_point"] != app.registration_point:
        raise Unauthorized(f"This application belongs to registration point "
                           f"{app.registration_point}, not yours "
                           f"({viewer['registration_point']}).", code="wrong_point")
    return app


def proof_files(history) -> list[dict]:
    """Every file the candidate has sent as proof, oldest first, with the round it came in
    (``file_id`` is the file's SHA-256: how the store keeps it)."""
    out, rounds = [], 0
    for ev in history:
        if ev.type != "ProofSubmitted":
            continue
        rounds += 1
        for f in ev.payload["files"]:
            out.append({"file_id": f["sha256"], "name": f["name"],
                        "content_type": f["content_type"], "size": f["size"],
                        "uploaded_at": ev.payload.get("submitted_at"), "round": rounds})
    return out


def document_viewed(app: Application, viewer: dict, document: str, now: datetime,
                    file: dict | None = None) -> NewEvent:
    return NewEvent(views_stream(app.application_id), "DocumentViewed", {
        "application_id": app.application_id, "session_id": app.session_id,
        "account_id": app.account_id, "registration_point": app.registration_point,
        "viewer": viewer["staff_id"], "viewer_role": viewer["role"],
        "viewer_point": viewer.get("registration_point"), "document": document,
        "file_id": file["file_id"] if file else None, "file_name": file["name"] if file else None,
        "viewed_at": iso(now)})
