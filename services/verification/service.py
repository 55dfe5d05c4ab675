"""The verification service's entrypoints (thin): it opens a case for every application,
checks it automatically against reference data where the candidate pledged, queues it for
a registration point's manual check where proof is needed, and runs the authority's spot
check. Every outcome is an event the registration service records on the application.

It also takes candidates' enquiries (疑问核实) about a rejection, answered by the case's
registration point; closes a case when its registration is voided (报名无效); and keeps the
integrity archive's records it writes (诚信档案) when a registration or scores (成绩无效,
from the scoring service) are voided with one, and publishes the archive (those and the
reference archive's: ``archive_feed``) for registration's read model.
"""

import uuid
from datetime import datetime

from nameko.extensions import DependencyProvider
from sqlalchemy import func, select

from services.verification import archive, domain, reference
from services.verification.archive_feed import ArchiveFeed
from services.verification.projection import (
    VerificationProjection,
    audit_trail,
    cases,
    eligibility_rules,
    enquiries,
    sessions,
)
from services.verification.rules import (
    Rules,
    available_years,
    check_rules_document,
    shipped_path,
    shipped_rules,
)
from services.verification.schemas import (
    REGISTRY,
    AnswerEnquirySchema,
    AuditQuerySchema,
    AuthoritySchema,
    ExamYearSchema,
    LoadRulesSchema,
    ManualDecisionSchema,
    RaiseEnquirySchema,
    SessionRefSchema,
    SpotCheckDecisionSchema,
    SpotCheckDrawSchema,
    StaffSchema,
)
from shared import audit
from shared.clock import clock_from_config, shanghai
from shared.deadlines import Deadlines, Due
from shared.dependencies import EventStoreProvider, RpcProxy, TrackingProvider
from shared.errors import NotFound, ValidationFailed
from shared.events import NewEvent
from shared.service import (
    EventSourcedService,
    command,
    config_timer,
    deadline_timer,
    load,
    upstream_events,
)
from shared.session import SessionDocument, require_open
from shared.session_cache import SessionCache
from shared.tracking import dispatch


def session_stream(session_id):
    return f"session-{session_id}"


def draw_stream(session_id):
    return f"spotcheck-{session_id}"


def fold_session(events) -> SessionDocument | None:
    return SessionDocument.from_dict(events[-1].payload["document"]) if events else None


def rules_in_force_in(tx, rule_books, exam_year) -> Rules | None:
    """The rules of ``exam_year`` an application is checked against, as ``tx`` sees them:
    the latest version loaded, else the shipped file, else None."""
    return domain.rules_in_force(rule_books.get_in(tx, exam_year), shipped_rules(exam_year))


# -- consuming registration's events -----------------------------------------------------

def make_prepare(config, providers):
    """Reference lookups (the registry, the integrity archive) happen here, before the
    consumer's transaction opens: a real registry is a network call. The steps get the
    container's folded sessions and rule books with them."""
    ref = reference.from_config(config)
    clock = clock_from_config(config)
    folds = {"session_docs": providers.session_docs, "rule_books": providers.rule_books}

    def prepare(event):
        now = clock.now()
        if event.type != "ApplicationSubmitted":
            return {"now": now, **folds}
        return {"now": now, **folds, "facts": reference.gather_facts(
            ref, event.payload["candidate"], now.date())}

    return prepare


def _draw_done(tx, doc, now) -> bool:
    """The session's spot-check sample can take no more cases: drawn, or its window over. A
    case that passes then is confirmed at once (the window's pass-through has run)."""
    return bool(tx.stream_version(draw_stream(doc.session_id))) or \
        now > doc.window("spot_check").end


def _session_scheduled(tx, event, prepared):
    p = event.payload
    tx.append([NewEvent(session_stream(p["session_id"]), "SessionRecorded",
                        {"session_id": p["session_id"], "document": p["document"]})])


def _timetable_amended(tx, event, prepared):
    p = event.payload
    doc = prepared["session_docs"].get_in(tx, p["session_id"])
    if doc is not None:
        amended = doc.amended(p["window"], datetime.fromisoformat(p["start"]),
                              datetime.fromisoformat(p["end"]))
        tx.append([NewEvent(session_stream(p["session_id"]), "SessionRecorded",
                            {"session_id": p["session_id"], "document": amended.to_dict()})])


def _application_submitted(tx, event, prepared):
    p, now = event.payload, prepared["now"]
    stream = domain.case_stream(p["application_id"])
    if tx.stream_version(stream):
        return
    doc = prepared["session_docs"].get_in(tx, p["session_id"])
    rules = rules_in_force_in(tx, prepared["rule_books"], doc.exam_year)  # None: manual check
    facts = prepared["facts"]
    if not facts.get("integrity"):  # records this service wrote count as much
        who = p["candidate"]
        facts = {**facts, "integrity": archive.written_record(tx.conn, who["id_type"],
                                                              who["id_number"])}
    tx.append(domain.open_case(p, rules, facts, doc.eligibility_cutoff, now, doc.exam_year,
                               _draw_done(tx, doc, now)), {stream: 0})


def _voided(decide):
    """报名无效 / 成绩无效: ``decide(case, payload, now, recorded)`` on the application's case,
    with the integrity record (诚信档案) written from it at most once, keyed by the event."""
    def step(tx, event, prepared):
        p = event.payload
        stream = domain.case_stream(p["application_id"])
        case = domain.fold(tx.read_stream(stream))
        record = domain.integrity_stream(domain.integrity_record_id(
            f"{event.type} {p['application_id']}"))
        events = decide(case, p, prepared["now"], bool(tx.stream_version(record)))
        tx.append(events, {stream: case.version if case else 0, record: 0})
    return step


def _on_case(decide):
    """A step that folds the application's case (if it has one) and appends ``decide``'s
    events: ``decide(case, event, now)``."""
    def step(tx, event, prepared):
        stream = domain.case_stream(event.payload["application_id"])
        case = domain.fold(tx.read_stream(stream))
        if case is not None:
            tx.append(decide(case, event, prepared["now"]), {stream: case.version})
    return step


on_registration_event = dispatch({
    "ExamSessionScheduled": _session_scheduled,
    "TimetableAmended": _timetable_amended,
    "ApplicationSubmitted": _application_submitted,
    "RegistrationVoided": _voided(domain.registration_voided),
    "CommitmentWithdrawn": _on_case(lambda case, event, now:
                                    domain.commitment_withdrawn(case, now)),
    "ProofSubmitted": _on_case(lambda case, event, now:
                               domain.proof_received(case, event.payload["files"], now)),
}, prepared=True)


# -- consuming scoring's events ------------------------------------------------------------

def make_scoring_prepare(config, providers):
    clock = clock_from_config(config)
    return lambda event: {"now": clock.now()}


# 成绩无效 with an integrity record: written from the candidate on the case
on_scoring_event = dispatch({"ScoresVoided": _voided(domain.scores_voided)}, prepared=True)


class Reference(DependencyProvider):
    """The reference-data adapter (simulated CSV registry by default; see reference.py)."""

    def setup(self):
        self.reference = reference.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.reference


class VerificationService(EventSourcedService):
    name = "verification"
    store = EventStoreProvider(REGISTRY, projections=[VerificationProjection()])
    #: folded session documents, re-folded only when a session's stream changes
    session_docs = SessionCache(fold_session, session_stream)
    #: folded rule books (报考条件) per exam year, re-folded only when a year's stream changes
    rule_books = SessionCache(domain.fold_rule_book, domain.rules_stream)
    tracking = TrackingProvider({"registration": (make_prepare, on_registration_event),
                                 "scoring": (make_scoring_prepare, on_scoring_event)})
    registration_rpc = RpcProxy("registration")
    scoring_rpc = RpcProxy("scoring")
    deadline_effects = Deadlines()
    reference = Reference()
    archive_feed = ArchiveFeed()

    @upstream_events("registration")
    def on_registration(self, message):
        self.tracking.receive("registration", message, self.registration_rpc.events_after)

    @upstream_events("scoring")
    def on_scoring(self, message):
        self.tracking.receive("scoring", message, self.scoring_rpc.events_after)

    @config_timer()
    def catch_up(self):
        self.tracking.catch_up({"registration": self.registration_rpc.events_after,
                                "scoring": self.scoring_rpc.events_after})

    @deadline_timer()
    def deadlines(self):
        """Deadline effects, once (shared.deadlines): when the spot-check window closes,
        every passed case not drawn passes through; when 核对确认 closes, enquiries still
        open are closed."""
        self.deadline_effects.run_due(self.store, self.clock.now(), self.deadline_plan())

    def deadline_plan(self):
        docs = [doc for doc in (self.session_docs.get(self.store, sid) for sid in self._session_ids())
                if doc is not None]
        return [Due(doc.session_id, window, doc.window(window).end_exclusive,
                    lambda tx, doc=doc, effect=effect: effect(tx, doc))
                for doc in docs for window, effect in (("spot_check", self._pass_through),
                                                       ("confirmation", self._close_enquiries))]

    def scrape_gauges(self):
        """With the overdue deadlines: each point's manual-check queue (人工核查) and the
        windows' ends, for the alert on a queue not empty as verification closes."""
        gauges = super().scrape_gauges()
        with self.store.read_engine.connect() as c:
            gauges["kaowu_manual_check_queue"] = [
                ((sid, point), n) for sid, point, n in c.execute(
                    select(cases.c.session_id, cases.c.registration_point, func.count())
                    .where(cases.c.status == "awaiting_manual")
                    .group_by(cases.c.session_id, cases.c.registration_point))]
        gauges["kaowu_window_end_timestamp_seconds"] = [
            ((sid, name), window.end_exclusive.timestamp())
            for sid in self._session_ids()
            for name, window in self.session_docs.get(self.store, sid).windows.items()]
        return gauges

    @staticmethod
    def _close_enquiries(tx, doc):
        events, expected = [], {}
        for app_id in tx.conn.execute(select(enquiries.c.application_id).where(
                enquiries.c.session_id == doc.session_id, enquiries.c.status == "open")).scalars():
            case = domain.fold(tx.read_stream(domain.case_stream(app_id)))
            events += domain.close_enquiry(case)
            expected[domain.case_stream(app_id)] = case.version
        tx.append(events, expected)

    @staticmethod
    def _pass_through(tx, doc):
        events, expected = [], {}
        for app_id in tx.conn.execute(select(cases.c.application_id).where(
                cases.c.session_id == doc.session_id, cases.c.status == "passed")).scalars():
            case = domain.fold(tx.read_stream(domain.case_stream(app_id)))
            events += domain.pass_through(case)
            expected[domain.case_stream(app_id)] = case.version
        tx.append(events, expected)

    # -- for other services --------------------------------------------------------------

    @config_timer(eager=True)
    def publish_archive(self):
        """The reference integrity archive (诚信档案) into the log, once per process: what
        registration refuses the pledge by (``archive_feed``)."""
        self.archive_feed.publish(self.store, self.reference)

    # -- registration-point staff (人工核查) ---------------------------------------------

    @command
    def manual_queue(self, staff, session_id=None):
        """The cases waiting for this point's manual check, oldest first."""
        who = load(StaffSchema(), staff)
        session_id = _session_ref(session_id, optional=True)
        q = select(cases).where(cases.c.registration_point == who["registration_point"],
                                cases.c.status == "awaiting_manual").order_by(cases.c.updated_at)
        if session_id:
            q = q.where(cases.c.session_id == session_id)
        now = self.clock.now()
        with self.store.read_engine.connect() as c:
            # how long each has waited: since it last changed (its proof arrived)
            return [{**_case_row(r), "waiting_since": r.updated_at,
                     "waiting_s": max(0, int((now - datetime.fromisoformat(r.updated_at))
                                             .total_seconds()))}
                    for r in c.execute(q)]

    @command
    def decide_manual(self, staff, data):
        who = load(StaffSchema(), staff)
        cmd = load(ManualDecisionSchema(), data)
        stream = domain.case_stream(cmd["application_id"])
        now = self.clock.now()

        def decide(tx):
            case = self._case(tx, stream, cmd["application_id"])
            doc = self.session_docs.get_in(tx, case.session_id)
            in_service, hours = _service(doc, case.registration_point, now)
            draw_done = _draw_done(tx, doc, now)
            tx.append(domain.manual_decision(
                case, cmd["decision"] == "pass", cmd["reason"], who["staff_id"],
                who["registration_point"], cmd["final"], now, in_service, draw_done, hours),
                {stream: case.version})

        self.store.execute(decide)
        return self.get_case(cmd["application_id"])

    # -- the exam authority (抽查复核) ---------------------------------------------------

    @command
    def draw_spot_check(self, authority, data):
        """Draw the sample; cases not drawn pass through. Reproducible from the seed."""
        who = load(AuthoritySchema(), authority)
        cmd = load(SpotCheckDrawSchema(), data)
        now = self.clock.now()
        stream = draw_stream(cmd["session_id"])

        def decide(tx):
            doc = self.session_docs.get_in(tx, cmd["session_id"])
            if doc is None:
                raise NotFound("No such exam session.", {"session_id": cmd["session_id"]})
            require_open(doc, "spot_check", now, "Drawing the spot check")
            domain.require_first_draw(doc.session_id, bool(tx.stream_version(stream)))
            ids = tx.conn.execute(select(cases.c.application_id).where(
                cases.c.session_id == doc.session_id, cases.c.status == "passed")).scalars().all()
            population = [domain.fold(tx.read_stream(domain.case_stream(i))) for i in ids]
            draw_id = uuid.uuid4().hex
            selected, per_case = domain.draw_sample(population, cmd["rate"], cmd["seed"], draw_id)
            events = [NewEvent(stream, "SpotCheckDrawn", {
                "session_id": doc.session_id, "draw_id": draw_id, "seed": cmd["seed"],
                "rate": cmd["rate"], "population": sorted(ids), "selected": selected,
                "by": who["staff_id"]})]
            expected = {stream: 0}
            for case in population:
                events += per_case[case.application_id]
                expected[domain.case_stream(case.application_id)] = case.version
            tx.append(events, expected)
            return {"draw_id": draw_id, "population": len(ids), "selected": selected,
                    "seed": cmd["seed"], "rate": cmd["rate"]}

        return self.store.execute(decide)

    @command
    def decide_spot_check(self, authority, data):
        who = load(AuthoritySchema(), authority)
        cmd = load(SpotCheckDecisionSchema(), data)
        stream = domain.case_stream(cmd["application_id"])
        now = self.clock.now()

        def decide(tx):
            case = self._case(tx, stream, cmd["application_id"])
            doc = self.session_docs.get_in(tx, case.session_id)
            require_open(doc, "spot_check", now, "Deciding a spot check")
            tx.append(domain.spot_check_decision(case, cmd["decision"] == "pass", cmd["reason"],
                                                 who["staff_id"], now), {stream: case.version})

        self.store.execute(decide)
        return self.get_case(cmd["application_id"])

    @command
    def spot_check(self, authority, session_id):
        """抽查: the session's draw (rate, seed, who drew, how many of how many) and the
        cases drawn with their decisions so far; ``draw`` is None before the draw."""
        load(AuthoritySchema(), authority)
        session_id = _session_ref(session_id)
        drawn = [e for e in self.store.read_stream(draw_stream(session_id))
                 if e.type == "SpotCheckDrawn"]
        draw = None
        if drawn:
            p = drawn[-1].payload
            draw = {"draw_id": p["draw_id"], "seed": p["seed"], "rate": p["rate"],
                    "by": p["by"], "at": drawn[-1].metadata.get("occurred_at"),
                    "population": len(p["population"]), "selected": list(p["selected"])}
        rows = []
        if draw and draw["selected"]:
            with self.store.read_engine.connect() as c:
                found = {r.application_id: r for r in c.execute(select(cases).where(
                    cases.c.application_id.in_(draw["selected"])))}
            rows = [{**_case_row(found[a]), "registration_point": found[a].registration_point,
                     "spot_checked": found[a].spot_checked}
                    for a in draw["selected"] if a in found]
        return {"session_id": session_id, "draw": draw, "cases": rows}

    # -- 疑问核实: enquiries -------------------------------------------------------------

    @command
    def raise_enquiry(self, account_id, data):
        """The candidate questions the rejection on their case, until 核对确认 closes."""
        account_id = _account_id(account_id)
        cmd = load(RaiseEnquirySchema(), data)
        now = self.clock.now()
        with self.store.read_engine.connect() as c:
            app_id = c.execute(select(cases.c.application_id).where(
                cases.c.account_id == account_id,
                cases.c.session_id == cmd["session_id"])).scalar()
        if app_id is None:
            raise NotFound("You have no verification case in this exam session.",
                           {"session_id": cmd["session_id"]})
        enquiry_id = uuid.uuid4().hex
        stream = domain.case_stream(app_id)

        def decide(tx):
            case = self._case(tx, stream, app_id)
            doc = self.session_docs.get_in(tx, case.session_id)
            tx.append(domain.raise_enquiry(case, account_id, enquiry_id, cmd["text"], now,
                                           doc.window("confirmation")), {stream: case.version})

        self.store.execute(decide)
        return self._enquiry(enquiry_id)

    @command
    def answer_enquiry(self, staff, data):
        """Staff of the case's registration point answer, in their service hours;
        ``reopen`` sends the case back to proof and the manual check."""
        who = load(StaffSchema(), staff)
        cmd = load(AnswerEnquirySchema(), data)
        now = self.clock.now()
        with self.store.read_engine.connect() as c:
            app_id = c.execute(select(enquiries.c.application_id).where(
                enquiries.c.enquiry_id == cmd["enquiry_id"])).scalar()
        if app_id is None:
            raise NotFound("No such enquiry.", {"enquiry_id": cmd["enquiry_id"]})
        stream = domain.case_stream(app_id)

        def decide(tx):
            case = self._case(tx, stream, app_id)
            doc = self.session_docs.get_in(tx, case.session_id)
            in_service, hours = _service(doc, case.registration_point, now)
            tx.append(domain.answer_enquiry(case, cmd["enquiry_id"], cmd["answer"], cmd["reopen"],
                                            who["staff_id"], who["registration_point"], now,
                                            in_service, hours), {stream: case.version})

        self.store.execute(decide)
        return self._enquiry(cmd["enquiry_id"])

    @command
    def enquiry_queue(self, staff, session_id=None):
        """The open enquiries of this staff member's point, oldest first."""
        who = load(StaffSchema(), staff)
        session_id = _session_ref(session_id, optional=True)
        q = (select(enquiries, cases.c.candidate_name, cases.c.status.label("case_status"),
                    cases.c.reason.label("case_reason"))
             .join(cases, cases.c.application_id == enquiries.c.application_id)
             .where(enquiries.c.registration_point == who["registration_point"],
                    enquiries.c.status == "open")
             .order_by(enquiries.c.raised_at, enquiries.c.enquiry_id))
        if session_id:
            q = q.where(enquiries.c.session_id == session_id)
        with self.store.read_engine.connect() as c:
            return [{**_enquiry_row(r), "candidate_name": r.candidate_name,
                     "case_status": r.case_status, "case_reason": r.case_reason}
                    for r in c.execute(q)]

    @command
    def get_enquiries(self, account_id, session_id):
        """The candidate's own enquiries in a session, with their answers, oldest first."""
        account_id = _account_id(account_id)
        session_id = _session_ref(session_id)
        with self.store.read_engine.connect() as c:
            rows = c.execute(select(enquiries).where(
                enquiries.c.account_id == account_id, enquiries.c.session_id == session_id)
                .order_by(enquiries.c.raised_at, enquiries.c.enquiry_id)).all()
        return [_enquiry_row(r) for r in rows]

    def _enquiry(self, enquiry_id):
        with self.store.read_engine.connect() as c:
            return _enquiry_row(c.execute(select(enquiries).where(
                enquiries.c.enquiry_id == enquiry_id)).one())

    # -- the audit trail (who, when, what, why) -----------------------------------------

    @command
    def audit_trail(self, authority, data=None):
        """Every staff and authority decision taken here, newest first: manual and
        spot-check decisions, draws, enquiry answers, voidings recorded on cases."""
        load(AuthoritySchema(), authority)
        cmd = load(AuditQuerySchema(), data or {})
        with self.store.read_engine.connect() as c:
            return [_audit_row(r) for r in c.execute(
                audit.search(select(audit_trail), audit_trail, cmd))]

    # -- 报考条件: eligibility rules per exam year ---------------------------------------

    @command
    def load_rules(self, authority, data):
        """The exam authority loads a rules document (YAML) as its exam year's next version,
        checked whole (every problem listed with its path). The same rules as those in
        force add no version (``changed`` false). Applications are checked against the
        version in force when their case opens."""
        who = load(AuthoritySchema(), authority)
        cmd = load(LoadRulesSchema(), data)
        document = check_rules_document(cmd["yaml"], cmd["exam_year"])
        year, now = cmd["exam_year"], self.clock.now()
        stream = domain.rules_stream(year)

        def decide(tx):
            book = domain.fold_rule_book(tx.read_stream(stream))
            events = domain.load_rules_version(book, shipped_rules(year), document, cmd["yaml"],
                                               who["staff_id"], cmd["reason"], now,
                                               self._session_levels(tx.conn, year))
            tx.append(events, {stream: len(book.versions) if book else 0})
            return bool(events)

        changed = self.store.execute(decide)
        return {**self.get_rules(year), "changed": changed}

    @command
    def get_rules(self, exam_year, version=None):
        """The rules of an exam year as a document: the version in force (or ``version``),
        with every version's who, when and why. ``NotFound`` if the year has none."""
        q = load(ExamYearSchema(), {"exam_year": exam_year, "version": version})
        year = q["exam_year"]
        book = self.rule_books.get(self.store, year)
        shipped = shipped_rules(year)
        versions = ([_shipped_version(shipped)] if shipped else []) + [
            _loaded_version(v) for v in (book.versions if book else [])]
        if not versions:
            raise NotFound(_no_rules_message(year), {"exam_year": "no rules"})
        in_force = versions[-1]["version"]
        want = in_force if q["version"] is None else q["version"]
        if want == 0 and shipped:
            document, text = _shipped_document(year)
        elif book and 1 <= want <= len(book.versions):
            document, text = book.versions[want - 1]["document"], book.versions[want - 1]["yaml"]
        else:
            raise NotFound(f"{year}年度报考条件没有第 {want} 版 (no version {want} of the "
                           f"rules of {year}).", {"version": "no such version"})
        chosen = next(v for v in versions if v["version"] == want)
        return {"exam_year": year, "version": want, "in_force": in_force,
                "source": chosen["source"], "digest": chosen["digest"],
                "levels": sorted(document["levels"]), "document": document, "yaml": text,
                "versions": versions}

    @command
    def list_rules(self):
        """Every exam year with rules: the version in force of each, newest year first."""
        with self.store.read_engine.connect() as c:
            loaded = {r.exam_year: r for r in c.execute(
                select(eligibility_rules).order_by(eligibility_rules.c.version))}
        years = sorted(set(loaded) | set(available_years()), reverse=True)
        out = []
        for year in years:
            if year in loaded:
                r = loaded[year]
                out.append({"exam_year": year, "version": r.version, "source": "authority",
                            "digest": r.digest, "levels": sorted(r.document["levels"]),
                            "loaded_by": r.loaded_by, "loaded_at": r.loaded_at})
            elif (shipped := shipped_rules(year)) is not None:
                out.append({**_shipped_version(shipped), "exam_year": year,
                            "levels": sorted(shipped.level_names)})
        return out

    def _session_levels(self, conn, exam_year) -> dict[str, set[str]]:
        """The levels each session of ``exam_year`` offers, as verification recorded them."""
        out = {}
        for r in conn.execute(select(sessions)):
            if r.document.get("exam_year") == exam_year:
                out[r.session_id] = {lv["code"] for lv in r.document.get("levels") or ()}
        return out

    # -- queries -------------------------------------------------------------------------

    @command
    def get_case(self, application_id):
        if not isinstance(application_id, str) or not 0 < len(application_id) <= 200:
            raise ValidationFailed("Expected an application id.", {"application_id": "required"})
        case = domain.fold(self.store.read_stream(domain.case_stream(application_id)))
        if case is None:
            raise NotFound("No verification case for this application (yet).",
                           {"application_id": application_id})
        return {"application_id": case.application_id, "account_id": case.account_id,
                "session_id": case.session_id, "registration_point": case.registration_point,
                "level": case.level, "status": case.status, "commitment": case.commitment,
                "auto_check": case.auto_check, "proof_cause": case.proof_cause,
                "spot_checked": case.spot_checked, "enquiries": case.enquiries,
                "rules": case.rules,
                "voided": case.voided, "proof_requests": case.proof_requests,
                "proof_files": domain.proof_files(case), "history": case.history}

    @command
    def case_counts(self, session_id):
        session_id = _session_ref(session_id)
        with self.store.read_engine.connect() as c:
            return dict(c.execute(select(cases.c.status, func.count()).where(
                cases.c.session_id == session_id).group_by(cases.c.status)).all())

    @command
    def enquiry_counts(self, session_id):
        session_id = _session_ref(session_id)
        with self.store.read_engine.connect() as c:
            return dict(c.execute(select(enquiries.c.status, func.count()).where(
                enquiries.c.session_id == session_id).group_by(enquiries.c.status)).all())

    def business_counts(self):
        with self.store.read_engine.connect() as c:
            return {"cases": dict(c.execute(select(cases.c.status, func.count())
                                            .group_by(cases.c.status)).all()),
                    "enquiries": dict(c.execute(select(enquiries.c.status, func.count())
                                                .group_by(enquiries.c.status)).all())}

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _case(tx, stream, application_id):
        case = domain.fold(tx.read_stream(stream))
        if case is None:
            raise NotFound("No verification case for this application.",
                           {"application_id": application_id})
        return case

    def _session_ids(self):
        with self.store.read_engine.connect() as c:
            return list(c.execute(select(sessions.c.session_id)).scalars())


def _no_rules_message(year):
    return (f"{year}年度没有报考条件，请先加载（kaowu rules load {year} FILE，或 PUT "
            f"/api/authority/rules/{year}）。No eligibility rules for exam year {year}.")


def _shipped_version(shipped):
    return {"version": 0, "source": "shipped", "digest": shipped.digest,
            "loaded_by": None, "loaded_at": None,
            "reason": f"随程序提供的默认报考条件 (shipped default, "
                      f"services/verification/rules/{shipped.exam_year}.yml)"}


def _loaded_version(p):
    return {"version": p["version"], "source": "authority", "digest": p["digest"],
            "loaded_by": p["by"], "loaded_at": p["loaded_at"], "reason": p.get("reason")}


def _shipped_document(year):
    text = shipped_path(year).read_text(encoding="utf-8")
    return check_rules_document(text, year), text


def _service(doc, point_code, now):
    """(whether the point serves at ``now``, its service hours as people read them)."""
    point = doc.points.get(point_code)
    if point is None:
        return False, None
    return point.in_service(now, doc), domain.describe_service(point, doc)


def _session_ref(session_id, optional=False):
    if optional and session_id in (None, ""):
        return None
    return load(SessionRefSchema(), {"session_id": session_id})["session_id"]


def _account_id(account_id):
    if not isinstance(account_id, str) or not (1 <= len(account_id) <= 64) or not account_id.isalnum():
        raise ValidationFailed("Not an account id.", {"account_id": "expected an account id"})
    return account_id


def _enquiry_row(r):
    return {"enquiry_id": r.enquiry_id, "application_id": r.application_id,
            "session_id": r.session_id, "registration_point": r.registration_point,
            "about": r.about, "text": r.text, "raised_at": r.raised_at, "status": r.status,
            "answer": r.answer, "staff": r.staff, "reopened": r.reopened,
            "answered_at": r.answered_at, "closed_reason": r.closed_reason}


def _audit_row(r):
    return {"at": r.at, "at_local": shanghai(datetime.fromisoformat(r.at)) if r.at else None,
            "session_id": r.session_id, "staff_id": r.staff_id,
            "registration_point": r.registration_point, "action": r.action,
            "application_id": r.application_id, "what": r.what, "why": r.why}


def _case_row(r):
    return {"application_id": r.application_id, "session_id": r.session_id,
            "candidate_name": r.candidate_name, "level": r.level, "status": r.status,
            "proof_cause": r.proof_cause, "reason": r.reason, "updated_at": r.updated_at}
