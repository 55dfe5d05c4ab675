"""The registration service's entrypoints (thin): exam sessions for the authority,
applications for candidates, and the consumers that keep registration's view of accounts
and of verification outcomes.

Who is calling is the gateway's business (it authenticates and passes the account id);
here every input is validated and every window is checked on the server's clock.
"""

import base64
import hashlib
import json
from datetime import datetime

from sqlalchemy import func, select

from services.registration import domain, integrity
from services.registration.projection import (
    RegistrationProjection,
    applications,
    audit_trail,
    candidates,
    sessions,
)
from services.registration.schemas import (
    REGISTRY,
    AmendTimetableSchema,
    AuditQuerySchema,
    AuthoritySchema,
    CountsRefSchema,
    LoadSessionSchema,
    ProofRefSchema,
    SessionRefSchema,
    SubmitApplicationSchema,
    SubmitProofSchema,
    ViewerSchema,
    VoidRegistrationSchema,
)
from shared import audit
from shared.clock import count_by_hour, shanghai
from shared.deadlines import Deadlines, Due
from shared.dependencies import EventStoreProvider, RpcProxy, TrackingProvider
from shared.errors import NotFound, ValidationFailed
from shared.eventstore.tables import events_table
from shared.service import (
    EventSourcedService,
    command,
    config_timer,
    deadline_timer,
    load,
    upstream_events,
)
from shared.session import WINDOW_LABELS, parse_session
from shared.session_cache import SessionCache
from shared.tracking import dispatch


def _verification_outcome(tx, event):
    stream = domain.application_stream(event.payload["application_id"])
    app = domain.fold_application(tx.read_stream(stream))
    closed = False
    if app is not None and event.payload.get("cause") == "enquiry_reopened":
        closed = bool(tx.stream_version(domain.deadline_stream(app.session_id, "confirmation")))
    tx.append(domain.record_outcome(app, event, closed), {stream: app.version if app else 0})


def _enquiry(tx, event):
    stream = domain.application_stream(event.payload["application_id"])
    app = domain.fold_application(tx.read_stream(stream))
    tx.append(domain.record_enquiry(app, event), {stream: app.version if app else 0})


on_account_event = dispatch({
    "AccountRegistered": lambda tx, event: tx.append(domain.candidate_registered(event)),
    "ProfileUpdated": lambda tx, event: tx.append(domain.candidate_profile_updated(event)),
})
# verification's outcomes, its enquiries (疑问核实) for the application's history, and its
# integrity archive (诚信档案) for who may pledge
on_verification_event = dispatch({
    **dict.fromkeys(domain.OUTCOME_STATUS, _verification_outcome),
    "EnquiryRaised": _enquiry, "EnquiryAnswered": _enquiry,
    **dict.fromkeys(integrity.UPSTREAM_TYPES,
                    lambda tx, event: tx.append(integrity.record_events(event))),
})


class RegistrationService(EventSourcedService):
    name = "registration"
    store = EventStoreProvider(REGISTRY, projections=[RegistrationProjection()])
    #: folded session documents, re-folded only when a session's stream changes
    session_docs = SessionCache(domain.fold_session, domain.session_stream)
    tracking = TrackingProvider({"account": on_account_event, "verification": on_verification_event})
    account_rpc = RpcProxy("account")
    verification_rpc = RpcProxy("verification")
    deadline_effects = Deadlines()

    # -- consumers -----------------------------------------------------------------------

    @upstream_events("account")
    def on_account(self, message):
        self.tracking.receive("account", message, self.account_rpc.events_after)

    @upstream_events("verification")
    def on_verification(self, message):
        self.tracking.receive("verification", message, self.verification_rpc.events_after)

    @config_timer()
    def catch_up(self):
        self.tracking.catch_up({"account": self.account_rpc.events_after,
                                "verification": self.verification_rpc.events_after})

    @deadline_timer()
    def deadlines(self):
        """Deadline effects, once (shared.deadlines): when 核对确认 closes, every open
        application ends."""
        self.deadline_effects.run_due(self.store, self.clock.now(), self.deadline_plan())

    def deadline_plan(self):
        docs = [self._session(sid) for sid in self._session_ids()]
        return [Due(doc.session_id, "confirmation", doc.window("confirmation").end_exclusive,
                    lambda tx, doc=doc: self._close_confirmation(tx, doc)) for doc in docs]

    @staticmethod
    def _close_confirmation(tx, doc):
        rows = tx.conn.execute(select(applications).where(
            applications.c.session_id == doc.session_id)).all()
        apps = [domain.Application(r.application_id, r.account_id, r.session_id, version=r.version,
                                   status=r.status, open_enquiry=r.open_enquiry) for r in rows]
        tx.append(domain.close_confirmation(doc, apps),
                  {domain.application_stream(a.application_id): a.version for a in apps})

    # -- the exam authority --------------------------------------------------------------

    @command
    def load_session(self, data):
        """An exam session document (YAML), checked whole: every problem listed. Its exam
        year must have eligibility rules for each of its levels: verification owns them and
        is asked here (a session refused now is better than applications nobody can check)."""
        doc = parse_session(load(LoadSessionSchema(), data)["yaml"])
        stream = domain.session_stream(doc.session_id)
        try:
            rule_levels = self.verification_rpc.get_rules(doc.exam_year)["levels"]
        except NotFound:
            rule_levels = None
        domain.require_eligibility_rules(doc, rule_levels)

        def decide(tx):
            tx.append(domain.schedule_session(doc, tx.stream_version(stream)), {stream: 0})

        self.store.execute(decide)
        return self.get_session(doc.session_id)

    @command
    def amend_timetable(self, data):
        cmd = load(AmendTimetableSchema(), data)
        stream = domain.session_stream(cmd["session_id"])
        now = self.clock.now()

        def decide(tx):
            evs = tx.read_stream(stream)
            doc = domain.fold_session(evs)
            if doc is None:
                raise NotFound("No such exam session.", {"session_id": cmd["session_id"]})
            tx.append(domain.amend_timetable(doc, cmd["window"], cmd["start"], cmd["end"],
                                             cmd["reason"], now), {stream: len(evs)})

        self.store.execute(decide)
        return self.get_session(cmd["session_id"])

    @command
    def void_registration(self, authority, data):
        """报名无效: the exam authority voids a registration at any stage, for a stated
        reason; ``integrity`` asks verification for an integrity record (诚信档案)."""
        who = load(AuthoritySchema(), authority)
        cmd = load(VoidRegistrationSchema(), data)
        stream = domain.application_stream(cmd["application_id"])
        now = self.clock.now()

        def decide(tx):
            app = domain.fold_application(tx.read_stream(stream))
            tx.append(domain.void_registration(app, who["staff_id"], cmd["reason"],
                                               cmd["integrity"], now),
                      {stream: app.version if app else 0})

        self.store.execute(decide)
        return self._application(self.store.read_stream(stream))

    @command
    def audit_trail(self, authority, data=None):
        """The exam authority's decisions taken here, newest first: voidings (who, when,
        why, whether an integrity record was asked for) and timetable amendments."""
        load(AuthoritySchema(), authority)
        cmd = load(AuditQuerySchema(), data or {})
        q = audit.search(select(audit_trail), audit_trail, cmd)
        with self.store.read_engine.connect() as c:
            return [{"at": r.at, "at_local": shanghai(datetime.fromisoformat(r.at)),
                     "session_id": r.session_id, "staff_id": r.staff_id, "action": r.action,
                     "application_id": r.application_id, "what": r.what, "why": r.why}
                    for r in c.execute(q)]

    @command
    def get_session(self, session_id):
        doc = self._session(load(SessionRefSchema(), {"session_id": session_id})["session_id"])
        return {"session_id": doc.session_id, "name": doc.name, "exam_year": doc.exam_year,
                "pledge_version": doc.pledge_version, "pledge_text": doc.pledge_text,
                "windows": {n: {"label": WINDOW_LABELS[n], "start": w.start.isoformat(),
                                "end": w.end.isoformat(), "description": w.describe()}
                            for n, w in doc.windows.items()},
                "levels": {c: {"name": lv.name, "subjects": list(lv.subjects),
                               "exemptions": dict(lv.exemptions),
                               "validity_years": lv.validity_years,
                               "validity_years_exempt": lv.validity_years_exempt}
                           for c, lv in doc.levels.items()},
                "subjects": {c: {"name": sj.name, "level": sj.level, "full_marks": sj.full_marks}
                             for c, sj in doc.subjects.items()},
                "registration_points": {c: {"name": p.name, "address": p.address, "phone": p.phone}
                                        for c, p in doc.points.items()},
                "phase": doc.phase(self.clock.now())}

    @command
    def list_sessions(self):
        with self.store.read_engine.connect() as c:
            return [{"session_id": r.session_id, "name": r.name, "exam_year": r.exam_year}
                    for r in c.execute(select(sessions).order_by(sessions.c.session_id))]

    # -- candidates ----------------------------------------------------------------------

    @command
    def submit_application(self, account_id, data):
        """网上报名."""
        account_id = _account_id(account_id)
        cmd = load(SubmitApplicationSchema(), data)
        now = self.clock.now()

        def decide(tx):
            # everything read on the transaction's connection (one checkout per submission)
            doc = self._session(cmd["session_id"], tx)
            candidate = domain.fold_candidate(tx.read_stream(domain.candidate_stream(account_id)))
            stream = domain.application_stream(domain.application_id(doc.session_id, account_id))
            # 诚信档案 as far as registration has heard; verification checks again (integrity.py)
            integrity_live = bool(cmd["commitment"] and candidate is not None and integrity.live(
                tx.conn, candidate.id_type, candidate.id_number, now.date()))
            existing = domain.fold_application(tx.read_stream(stream))
            # a first application (``submit`` refuses another): its history is what this
            # appends, committed as returned (no read back)
            return tx.append(domain.submit(doc, candidate, account_id, cmd, now, integrity_live,
                                           existing), {stream: 0})

        return self._application(self.store.execute(decide))

    @command
    def withdraw_commitment(self, account_id, session_id):
        """撤回承诺."""
        return self._act(account_id, session_id, domain.withdraw_commitment)

    @command
    def submit_proof(self, account_id, data):
        """提交证明材料 (PDF or JPEG)."""
        account_id = _account_id(account_id)
        cmd = load(SubmitProofSchema(), data)
        doc = self._session(cmd["session_id"])
        files = [{"sha256": hashlib.sha256(f["data"]).hexdigest(), "name": f["name"],
                  "content_type": f["content_type"], "size": len(f["data"])} for f in cmd["files"]]
        stream = domain.application_stream(domain.application_id(doc.session_id, account_id))
        now = self.clock.now()

        def decide(tx):
            app = domain.fold_application(tx.read_stream(stream))
            events = domain.submit_proof(doc, app, files, now)
            for f, meta in zip(cmd["files"], files, strict=True):
                tx.put_blob(meta["sha256"], meta["content_type"], f["data"])
            tx.append(events, {stream: app.version})

        self.store.execute(decide)
        return self.get_application(account_id, doc.session_id)

    @command
    def confirm_application(self, account_id, session_id):
        """核对确认."""
        return self._act(account_id, session_id, domain.confirm)

    @command
    def get_application(self, account_id, session_id):
        """Status, reasons and the whole history of the candidate's application."""
        account_id = _account_id(account_id)
        session_id = load(SessionRefSchema(), {"session_id": session_id})["session_id"]
        app_id = domain.application_id(session_id, account_id)
        history = self.store.read_stream(domain.application_stream(app_id))
        if not history:
            raise NotFound("You have no application for this exam session.", {"session_id": session_id})
        return self._application(history)

    @staticmethod
    def _application(history):
        app = domain.fold_application(history)
        return {
            "application_id": app.application_id, "session_id": app.session_id,
            "account_id": app.account_id, "level": app.level, "subjects": app.subjects,
            "exemption": app.exemption, "registration_point": app.registration_point,
            "commitment": app.commitment, "status": app.status,
            "status_label": domain.status_label(app), "reason": app.reason,
            "open_enquiry": app.open_enquiry,
            "voided": ({k: app.voided[k] for k in ("reason", "integrity", "voided_at")}
                       if app.voided else None),
            "history": [_history_item(e) for e in history],
        }

    @command
    def get_candidate(self, account_id):
        account_id = _account_id(account_id)
        with self.store.read_engine.connect() as c:
            row = c.execute(select(candidates).where(candidates.c.account_id == account_id)).first()
        if row is None:
            raise NotFound("Registration has not heard of this account yet.", {"account_id": account_id})
        return {"account_id": row.account_id, "name": row.name, "completeness": row.completeness,
                "complete": row.complete}

    @command
    def application_counts(self, session_id, account_ids=None):
        """Applications by status (for operators and the dashboard); of every candidate, or
        only of ``account_ids`` (a demo tells its own from the others')."""
        ref = load(CountsRefSchema(), {"session_id": session_id, "account_ids": account_ids})
        of = applications.c.session_id == ref["session_id"]
        if ref["account_ids"] is not None:
            of = of & applications.c.account_id.in_(ref["account_ids"])
        with self.store.read_engine.connect() as c:
            rows = c.execute(select(applications.c.status, func.count()).where(of)
                             .group_by(applications.c.status)).all()
        return dict(rows)

    @command
    def arrivals_per_hour(self, session_id):
        """For the dashboard's arrivals chart: applications submitted and confirmed (核对确认)
        per hour (Asia/Shanghai), from the log: ``{"applications": {hour start: count},
        "confirmations": {...}}``. A candidate who applies again counts again."""
        session_id = load(SessionRefSchema(), {"session_id": session_id})["session_id"]
        times = {"ApplicationSubmitted": ("applications", "submitted_at"),
                 "ApplicationConfirmed": ("confirmations", "confirmed_at")}
        found = {"applications": [], "confirmations": []}
        with self.store.read_engine.connect() as c:
            rows = c.execute(select(events_table.c.type, events_table.c.payload).where(
                events_table.c.type.in_(list(times))))
            for type_, payload in rows:
                p = json.loads(payload)
                if p.get("session_id") == session_id:
                    series, field = times[type_]
                    found[series].append(p[field])
        return {series: count_by_hour(ts) for series, ts in found.items()}

    def business_counts(self):
        with self.store.read_engine.connect() as c:
            return {"applications": dict(c.execute(select(applications.c.status, func.count())
                                                   .group_by(applications.c.status)).all())}

    # -- staff and the authority looking at a candidate's documents (audited) ------------

    @command
    def get_proof(self, viewer, application_id, file_id):
        """A proof file of an application, for staff of its point or the exam authority:
        ``{filename, content_type, data: base64}``. Every look is recorded (DocumentViewed,
        in the audit trail)."""
        who = load(ViewerSchema(), viewer)
        ref = load(ProofRefSchema(), {"application_id": application_id, "file_id": file_id})
        app, history = self._viewable(who, ref["application_id"], "proof")
        file = next((f for f in domain.proof_files(history) if f["file_id"] == ref["file_id"]),
                    None)
        blob = file and self.store.get_blob(file["file_id"])
        if not blob:  # a file of another application is not this one's either
            raise NotFound("This application has no such proof file.", {"file_id": file_id})
        self._viewed(app, who, "proof", file)
        return {"filename": file["name"], "content_type": blob["content_type"],
                "size": len(blob["data"]), "data": base64.b64encode(blob["data"]).decode()}

    @command
    def candidate_file(self, viewer, application_id):
        """What the staff of an application's point judge it by: the application with its
        history, the candidate's profile as registration knows it now and as it was when
        they applied, and the proof files. The look is recorded (DocumentViewed)."""
        who = load(ViewerSchema(), viewer)
        app_id = load(ProofRefSchema(only=("application_id",)),
                      {"application_id": application_id})["application_id"]
        app, history = self._viewable(who, app_id, "profile")
        candidate = domain.fold_candidate(
            self.store.read_stream(domain.candidate_stream(app.account_id)))
        self._viewed(app, who, "profile")
        profile = None if candidate is None else {
            "name": candidate.name, "id_type": candidate.id_type,
            "id_number": candidate.id_number, "completeness": candidate.completeness,
            "sections": candidate.sections}
        return {"application": self._application(history), "profile": profile,
                "at_application": app.candidate, "proof_files": domain.proof_files(history)}

    @command
    def candidate_photo(self, viewer, application_id):
        """The candidate's photo (from the account service) for staff of the application's
        point: ``{content_type, jpeg_base64}``. The look is recorded (DocumentViewed)."""
        who = load(ViewerSchema(), viewer)
        app_id = load(ProofRefSchema(only=("application_id",)),
                      {"application_id": application_id})["application_id"]
        app, _ = self._viewable(who, app_id, "photo")
        photo = self.account_rpc.get_photo(app.account_id)
        self._viewed(app, who, "photo")
        return photo

    def _viewable(self, who, app_id, document):
        history = self.store.read_stream(domain.application_stream(app_id))
        return domain.may_view(domain.fold_application(history), who, document), history

    def _viewed(self, app, who, document, file=None):
        event = domain.document_viewed(app, who, document, self.clock.now(), file)
        self.store.execute(lambda tx: tx.append([event]))

    # -- helpers -------------------------------------------------------------------------

    def _act(self, account_id, session_id, decide_fn):
        account_id = _account_id(account_id)
        doc = self._session(load(SessionRefSchema(), {"session_id": session_id})["session_id"])
        stream = domain.application_stream(domain.application_id(doc.session_id, account_id))
        now = self.clock.now()

        def decide(tx):
            app = domain.fold_application(tx.read_stream(stream))
            tx.append(decide_fn(doc, app, now), {stream: app.version if app else 0})

        self.store.execute(decide)
        return self.get_application(account_id, doc.session_id)

    def _session(self, session_id, tx=None):
        """The session's document as committed, or as ``tx`` sees it."""
        doc = (self.session_docs.get(self.store, session_id) if tx is None
               else self.session_docs.get_in(tx, session_id))
        if doc is None:
            raise NotFound(f"No exam session {session_id!r} has been scheduled.", {"session_id": session_id})
        return doc

    def _session_ids(self):
        with self.store.read_engine.connect() as c:
            return list(c.execute(select(sessions.c.session_id)).scalars())


def _account_id(account_id):
    if not isinstance(account_id, str) or not (1 <= len(account_id) <= 64) or not account_id.isalnum():
        raise ValidationFailed("Not an account id.", {"account_id": "expected an account id"})
    return account_id


def _history_item(e):
    at = e.metadata.get("occurred_at")
    item = {"type": e.type, "at": at,
            "at_local": shanghai(datetime.fromisoformat(at)) if at else None}
    p = e.payload
    if e.type == "VerificationRecorded":
        item.update(type=p["outcome"], reason=p["reason"], rule=p.get("rule"))
        if p.get("cause"):
            item["cause"] = p["cause"]
    elif e.type == "EnquiryRecorded":
        item.update(type="EnquiryRaised" if p["kind"] == "raised" else "EnquiryAnswered",
                    enquiry_id=p["enquiry_id"])
        if p["kind"] == "raised":
            item.update(about=p.get("about"), text=p["text"])
        else:
            item.update(answer=p["text"], reopened=bool(p.get("reopened")))
    elif "reason" in p:
        item["reason"] = p["reason"]
    if e.type == "ProofSubmitted":
        item["files"] = [{"name": f["name"], "size": f["size"]} for f in p["files"]]
    return item

