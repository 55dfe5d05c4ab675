"""The verification service's entrypoints (thin): it opens a case for every application,
checks it automatically against reference data where the candidate pledged, queues it for
a registration point's manual check where proof is needed, and runs the authority's spot
check. Every outcome is an event the registration service records on the application.
"""

import uuid
from datetime import datetime

from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy
from sqlalchemy import func, select

from services.verification import domain, reference
from services.verification.projection import VerificationProjection, cases, sessions
from services.verification.rules import load_rules
from services.verification.schemas import (
    REGISTRY,
    AuthoritySchema,
    ManualDecisionSchema,
    SpotCheckDecisionSchema,
    SpotCheckDrawSchema,
    StaffSchema,
)
from shared.clock import clock_from_config
from shared.dependencies import EventStoreProvider, TrackingProvider
from shared.errors import NotFound, ValidationFailed
from shared.events import NewEvent
from shared.service import EventSourcedService, command, config_timer, load, upstream_events
from shared.session import SessionDocument, require_open


def session_stream(session_id):
    return f"session-{session_id}"


def draw_stream(session_id):
    return f"spotcheck-{session_id}"


def deadline_stream(session_id, window):
    return f"deadline-{session_id}-{window}"


def fold_session(events) -> SessionDocument | None:
    return SessionDocument.from_dict(events[-1].payload["document"]) if events else None


# -- consuming registration's events -----------------------------------------------------

def make_prepare(config):
    """Reference lookups (the registry, the integrity archive) happen here, before the
    consumer's transaction opens: a real registry is a network call."""
    ref = reference.from_config(config)
    clock = clock_from_config(config)

    def prepare(event):
        now = clock.now()
        if event.type != "ApplicationSubmitted":
            return {"now": now}
        return {"now": now, "facts": reference.gather_facts(
            ref, event.payload["candidate"], now.date())}

    return prepare


def on_registration_event(tx, event, prepared):
    p, now = event.payload, prepared["now"]
    if event.type == "ExamSessionScheduled":
        stream = session_stream(p["session_id"])
        tx.append([NewEvent(stream, "SessionRecorded", {"session_id": p["session_id"],
                                                        "document": p["document"]})])
    elif event.type == "TimetableAmended":
        stream = session_stream(p["session_id"])
        doc = fold_session(tx.read_stream(stream))
        if doc is not None:
            amended = doc.amended(p["window"], datetime.fromisoformat(p["start"]),
                                  datetime.fromisoformat(p["end"]))
            tx.append([NewEvent(stream, "SessionRecorded", {"session_id": p["session_id"],
                                                            "document": amended.to_dict()})])
    elif event.type == "ApplicationSubmitted":
        stream = domain.case_stream(p["application_id"])
        if tx.stream_version(stream):
            return
        doc = fold_session(tx.read_stream(session_stream(p["session_id"])))
        rules = load_rules(doc.exam_year)
        tx.append(domain.open_case(p, rules, prepared["facts"], doc.eligibility_cutoff, now),
                  {stream: 0})
    elif event.type in ("CommitmentWithdrawn", "ProofSubmitted"):
        stream = domain.case_stream(p["application_id"])
        case = domain.fold(tx.read_stream(stream))
        if case is None:
            return
        events = (domain.commitment_withdrawn(case, now) if event.type == "CommitmentWithdrawn"
                  else domain.proof_received(case, p["files"], now))
        tx.append(events, {stream: case.version})


class Reference(DependencyProvider):
    """The reference-data adapter (simulated CSV registry by default; see reference.py)."""

    def setup(self):
        self.reference = reference.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.reference


class VerificationService(EventSourcedService):
    name = "verification"
    store = EventStoreProvider(REGISTRY, projections=[VerificationProjection()])
    tracking = TrackingProvider({"registration": (make_prepare, on_registration_event)})
    registration_rpc = RpcProxy("registration")
    reference = Reference()

    @upstream_events("registration")
    def on_registration(self, message):
        self.tracking.receive("registration", message, self.registration_rpc.events_after)

    @config_timer()
    def catch_up(self):
        self.tracking.catch_up({"registration": self.registration_rpc.events_after})

    @config_timer(interval=1.0, key="DEADLINE_INTERVAL")
    def deadlines(self):
        """When the spot-check window closes, every passed case not drawn passes through."""
        now = self.clock.now()
        for doc in self._sessions():
            window = doc.window("spot_check")
            if now < window.end_exclusive:
                continue
            self.store.execute(lambda tx, doc=doc: self._pass_through(tx, doc))

    def _pass_through(self, tx, doc):
        stream = deadline_stream(doc.session_id, "spot_check")
        if tx.stream_version(stream):
            return
        events, expected = [NewEvent(stream, "DeadlineReached", {"session_id": doc.session_id,
                                                                  "window": "spot_check"})], {stream: 0}
        for app_id in tx.conn.execute(select(cases.c.application_id).where(
                cases.c.session_id == doc.session_id, cases.c.status == "passed")).scalars():
            case = domain.fold(tx.read_stream(domain.case_stream(app_id)))
            events += domain.pass_through(case)
            expected[domain.case_stream(app_id)] = case.version
        tx.append(events, expected)

    # -- for other services --------------------------------------------------------------

    @command
    def integrity_check(self, id_type, id_number):
        """Is there a live record in the integrity archive (诚信档案)? (No details leave.)"""
        if not all(isinstance(v, str) and 0 < len(v) <= 32 for v in (id_type, id_number)):
            raise ValidationFailed("Expected an ID type and number.", {"id_number": "required"})
        record = self.reference.integrity_record(id_type, id_number, self.clock.now().date())
        return {"live": record is not None}

    # -- registration-point staff (人工核查) ---------------------------------------------

    @command
    def manual_queue(self, staff, session_id=None):
        """The cases waiting for this point's manual check, oldest first."""
        who = load(StaffSchema(), staff)
        q = select(cases).where(cases.c.registration_point == who["registration_point"],
                                cases.c.status == "awaiting_manual").order_by(cases.c.updated_at)
        if session_id:
            q = q.where(cases.c.session_id == session_id)
        with self.store.engine.connect() as c:
            return [_case_row(r) for r in c.execute(q)]

    @command
    def decide_manual(self, staff, data):
        who = load(StaffSchema(), staff)
        cmd = load(ManualDecisionSchema(), data)
        stream = domain.case_stream(cmd["application_id"])
        now = self.clock.now()

        def decide(tx):
            case = self._case(tx, stream, cmd["application_id"])
            doc = fold_session(tx.read_stream(session_stream(case.session_id)))
            point = doc.points.get(case.registration_point)
            in_service = point is not None and point.in_service(now, doc)
            draw_done = bool(tx.stream_version(draw_stream(case.session_id))) or \
                now > doc.window("spot_check").end
            tx.append(domain.manual_decision(
                case, cmd["decision"] == "pass", cmd["reason"], who["staff_id"],
                who["registration_point"], cmd["final"], now, in_service, draw_done),
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
            doc = fold_session(tx.read_stream(session_stream(cmd["session_id"])))
            if doc is None:
                raise NotFound("No such exam session.", {"session_id": cmd["session_id"]})
            require_open(doc, "spot_check", now, "Drawing the spot check")
            if tx.stream_version(stream):
                raise ValidationFailed("The spot check for this session has already been drawn.",
                                       {"session_id": "already drawn"})
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
            doc = fold_session(tx.read_stream(session_stream(case.session_id)))
            require_open(doc, "spot_check", now, "Deciding a spot check")
            tx.append(domain.spot_check_decision(case, cmd["decision"] == "pass", cmd["reason"],
                                                 who["staff_id"], now), {stream: case.version})

        self.store.execute(decide)
        return self.get_case(cmd["application_id"])

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
                "spot_checked": case.spot_checked, "history": case.history}

    @command
    def case_counts(self, session_id):
        with self.store.engine.connect() as c:
            return dict(c.execute(select(cases.c.status, func.count()).where(
                cases.c.session_id == session_id).group_by(cases.c.status)).all())

    def business_counts(self):
        with self.store.engine.connect() as c:
            return {"cases": dict(c.execute(select(cases.c.status, func.count())
                                            .group_by(cases.c.status)).all())}

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _case(tx, stream, application_id):
        case = domain.fold(tx.read_stream(stream))
        if case is None:
            raise NotFound("No verification case for this application.",
                           {"application_id": application_id})
        return case

    def _sessions(self):
        with self.store.engine.connect() as c:
            return [SessionDocument.from_dict(d) for d in c.execute(select(sessions.c.document)).scalars()]


def _case_row(r):
    return {"application_id": r.application_id, "session_id": r.session_id,
            "candidate_name": r.candidate_name, "level": r.level, "status": r.status,
            "proof_cause": r.proof_cause, "reason": r.reason, "updated_at": r.updated_at}
