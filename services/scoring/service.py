"""The scoring service's entrypoints (thin): it keeps the session documents (from
registration) and the admission tickets with their exam-day records (from admission),
takes the marking centre's score files (阅卷中心; in tests a simulated one), publishes
scores when the 查询成绩 window opens, decides passes and qualifications across years, and
voids scores (成绩无效) when the authority says so or the registration is voided.

Who is calling is the gateway's business: candidates by ``account_id``, the exam
authority as ``authority = {"staff_id": ...}``. Every input is validated here and every
window is checked on the server's clock.
"""

import uuid
from collections.abc import Iterable

import orjson
from sqlalchemy import Text, and_, cast, func, null, select

from services.scoring import domain
from services.scoring.projection import (
    ScoringProjection,
    attendance,
    imports,
    qualifications,
    results,
    sessions,
    tickets,
)
from services.scoring.schemas import (
    REGISTRY,
    AuthoritySchema,
    CandidateRefSchema,
    CountsRefSchema,
    ImportScoresSchema,
    SessionRefSchema,
    SessionResultsSchema,
    VoidScoresSchema,
)
from shared.clock import parse_iso
from shared.deadlines import Deadlines, Due
from shared.dependencies import EventStoreProvider, RpcProxy, TrackingProvider
from shared.errors import NotFound, Refused
from shared.events import StoredEvent
from shared.eventstore.tables import events_table
from shared.logging import get_logger
from shared.service import (
    EventSourcedService,
    command,
    config_timer,
    deadline_timer,
    load,
    upstream_events,
)
from shared.session import SessionDocument
from shared.tracking import dispatch

log = get_logger(__name__)

STREAMS_PER_QUERY = 1000


# -- consuming registration's and admission's events -----------------------------------

def _session_scheduled(tx, event):
    tx.append([domain.session_recorded(SessionDocument.from_dict(event.payload["document"]))])


def _timetable_amended(tx, event):
    p = event.payload
    doc = domain.fold_session(tx.read_stream(domain.session_stream(p["session_id"])))
    if doc is not None:
        tx.append([domain.session_recorded(doc.amended(
            p["window"], parse_iso(p["start"]), parse_iso(p["end"])))])


def _registration_voided(tx, event):
    """报名无效 voids the scores of that application too. The integrity record, if asked
    for, is written from RegistrationVoided itself: ScoresVoided does not ask again."""
    p = event.payload
    row = tx.conn.execute(select(tickets.c.account_id, tickets.c.session_id).where(
        tickets.c.application_id == p["application_id"])).first()
    if row is None:
        return  # no ticket here: no scores to void (admission cancels a later one)
    stream = domain.candidate_stream(row.account_id)
    record = domain.fold_candidate(row.account_id, tx.read_stream(stream))
    if row.session_id in record.voided:
        return
    tx.append(domain.void_events(
        record, session_id=row.session_id, application_id=p["application_id"],
        reason=f"报名无效 (registration voided): {p['reason']}", by=p["by"],
        integrity=False), {stream: record.version})


def _ticket_event(tx, event):
    stream, version = domain.ticket_stream_of(event.payload, tx.stream_version, tx.read_stream)
    tx.append(domain.ticket_events(event, version, stream), {stream: version})


on_registration_event = dispatch({"ExamSessionScheduled": _session_scheduled,
                                  "TimetableAmended": _timetable_amended,
                                  "RegistrationVoided": _registration_voided})
# admission's ticket events (not its seats, printing or private events)
on_admission_event = dispatch(dict.fromkeys(domain.TICKET_EVENTS, _ticket_event))


# -- reading what a decision needs (inside its transaction) ----------------------------

def session_doc(tx_or_store, session_id) -> SessionDocument:
    doc = domain.fold_session(tx_or_store.read_stream(domain.session_stream(session_id)))
    if doc is None:
        raise NotFound(f"No exam session {session_id!r} is known to scoring.",
                       {"session_id": session_id})
    return doc


def score_sheet(store, session_id, conn=None) -> domain.ScoreSheet:
    """The sheet without its rows (read only for the authority's view and to publish)."""
    events = store.events_after(0, 1_000_000, types=domain.SHEET_TYPES,
                                stream_id=domain.scores_stream(session_id), conn=conn)
    return domain.fold_sheet(session_id, events)


def ticket_views(conn, session_id, ticket_number=None, candidates=True
                 ) -> dict[str, domain.TicketView]:
    """The session's tickets from the read model (an import checks against all of them:
    the JSON columns come as text and are parsed once per distinct value)."""
    cols = [tickets.c.ticket_number, tickets.c.account_id, tickets.c.application_id,
            tickets.c.level, tickets.c.status, cast(tickets.c.subjects, Text),
            cast(tickets.c.exemption, Text),
            cast(tickets.c.candidate, Text) if candidates else null()]
    q = select(*cols).where(tickets.c.session_id == session_id)
    a = select(attendance.c.ticket_number, attendance.c.subject).where(
        attendance.c.session_id == session_id, attendance.c.status == "absent")
    if ticket_number is not None:
        q = q.where(tickets.c.ticket_number == ticket_number)
        a = a.where(attendance.c.ticket_number == ticket_number)
    absent: dict[str, set] = {}
    for t, s in conn.execute(a).tuples():
        absent.setdefault(t, set()).add(s)
    parsed: dict = {None: None, "null": None}

    def load(raw):
        if raw not in parsed:
            parsed[raw] = orjson.loads(raw)
        return parsed[raw]

    subjects: dict = {}
    nobody: frozenset = frozenset()
    out = {}
    for number, account, application, level, status, subj, exemption, candidate in \
            conn.execute(q).tuples():
        if subj not in subjects:
            subjects[subj] = tuple(orjson.loads(subj))
        out[number] = domain.TicketView(
            number, account, application, session_id, level, subjects[subj], load(exemption),
            (orjson.loads(candidate) if candidate else {}), status,
            frozenset(absent[number]) if number in absent else nobody)
    return out


def read_streams(tx, stream_ids: Iterable[str]) -> dict[str, list[StoredEvent]]:
    """Many streams in few queries (a publication folds every candidate of a session)."""
    out: dict[str, list[StoredEvent]] = {s: [] for s in stream_ids}
    ids = sorted(out)
    for i in range(0, len(ids), STREAMS_PER_QUERY):
        q = (select(events_table).where(events_table.c.stream_id.in_(ids[i:i + STREAMS_PER_QUERY]))
             .order_by(events_table.c.position))
        for e in tx.store._decode_all(tx.conn.execute(q)):
            out[e.stream_id].append(e)
    return out


def current_rows(store, sheet, conn=None) -> dict[str, dict]:
    """The rows of the import in force, from the log (they follow its ImportRecorded)."""
    return domain.rows_by_ticket(sheet.current["import_id"], store.events_after(
        sheet.current_position, 100_000_000, types=["ScoreRowsRecorded"],
        stream_id=domain.scores_stream(sheet.session_id), conn=conn))


def publication(tx, doc, sheet, published_at) -> domain.Publication:
    rows = current_rows(tx.store, sheet, conn=tx.conn)
    views = ticket_views(tx.conn, doc.session_id)
    accounts = {t.account_id for t in views.values() if t.status != domain.CANCELLED}
    streams = read_streams(tx, [domain.candidate_stream(a) for a in accounts])
    records = {a: domain.fold_candidate(a, streams[domain.candidate_stream(a)]) for a in accounts}
    return domain.publish(doc, sheet, rows, views.values(), records, published_at)


def run_import(store, who: dict, cmd: dict, now) -> dict:
    """Check a score file whole and store it in one append (the RPC, and the benchmark
    in-process). ``store``: anything with ``execute(command)`` and the store's reads."""
    session_id = cmd["session_id"]
    # cheap refusals first: a closed period needs no reading of a 50 MiB file
    domain.require_import_period(session_doc(store, session_id), score_sheet(store, session_id),
                                 now)
    parsed = domain.read_score_file(cmd["csv"])
    sha256 = domain.file_digest(cmd["csv"])
    import_id = uuid.uuid4().hex

    def decide(tx):
        doc = session_doc(tx, session_id)
        sheet = score_sheet(tx.store, session_id, conn=tx.conn)
        domain.require_import_period(doc, sheet, now)
        checked = domain.check_score_file(
            parsed, doc, ticket_views(tx.conn, session_id, candidates=False), cmd["filename"])
        tx.append(domain.import_events(doc, sheet, checked, import_id=import_id,
                                       filename=cmd["filename"], sha256=sha256,
                                       by=who["staff_id"], now=now),
                  {domain.scores_stream(session_id): sheet.version})
        return {"session_id": session_id, "import_id": import_id, "filename": cmd["filename"],
                "rows": len(checked.rows), "candidates": checked.candidates,
                "absent_rows": checked.absent_rows, "missing": checked.missing,
                "sha256": sha256,
                "supersedes": sheet.current["import_id"] if sheet.current else None}

    return store.execute(decide)


class ScoringService(EventSourcedService):
    name = "scoring"
    store = EventStoreProvider(REGISTRY, projections=[ScoringProjection()])
    tracking = TrackingProvider({"registration": on_registration_event,
                                 "admission": on_admission_event})
    registration_rpc = RpcProxy("registration")
    admission_rpc = RpcProxy("admission")
    deadline_effects = Deadlines()

    # -- consumers -----------------------------------------------------------------------

    @upstream_events("registration")
    def on_registration(self, message):
        self.tracking.receive("registration", message, self.registration_rpc.events_after)

    @upstream_events("admission")
    def on_admission(self, message):
        self.tracking.receive("admission", message, self.admission_rpc.events_after)

    @config_timer()
    def catch_up(self):
        self.tracking.catch_up({"registration": self.registration_rpc.events_after,
                                "admission": self.admission_rpc.events_after})

    @deadline_timer()
    def deadlines(self):
        """At the published time (the 查询成绩 window's start) the import in force at that
        instant is published, once (shared.deadlines). Without one, the authority
        publishes later by RPC."""
        self.deadline_effects.run_due(self.store, self.clock.now(), self.deadline_plan())

    def deadline_plan(self):
        with self.store.read_engine.connect() as c:
            docs = [SessionDocument.from_dict(d) for d in c.execute(select(sessions.c.document)).scalars()]
        return [Due(doc.session_id, "scores", doc.window("scores").start,
                    lambda tx, doc=doc: self._scores_deadline(tx, doc)) for doc in docs]

    @staticmethod
    def _scores_deadline(tx, doc) -> dict:
        """The effect; its answer goes into the record (whether it published)."""
        sheet = score_sheet(tx.store, doc.session_id, conn=tx.conn)
        start = doc.window("scores").start
        due = (not sheet.published_at and sheet.current is not None
               and parse_iso(sheet.current["imported_at"]) < start)
        if due:
            pub = publication(tx, doc, sheet, start)
            tx.append(pub.events, pub.expected)
            log.info("scores.published", session_id=doc.session_id, by="deadline",
                     candidates=pub.summary["candidates"])
        return {"published": due}

    # -- the exam authority --------------------------------------------------------------

    @command
    def import_scores(self, authority, data):
        """The marking centre's CSV (ticket_number,subject,score), checked whole; a
        re-import before publication supersedes the earlier one whole."""
        who = load(AuthoritySchema(), authority)
        cmd = load(ImportScoresSchema(), data)
        return run_import(self.store, who, cmd, self.clock.now())

    @command
    def publish_scores(self, authority, session_id):
        """Publish in the 查询成绩 window, once (the deadline timer does it at the window's
        start when an import was in by then)."""
        load(AuthoritySchema(), authority)
        sid = load(SessionRefSchema(), {"session_id": session_id})["session_id"]
        now = self.clock.now()

        def decide(tx):
            doc = session_doc(tx, sid)
            sheet = score_sheet(tx.store, sid, conn=tx.conn)
            domain.require_publishable(doc, sheet, now)
            pub = publication(tx, doc, sheet, now)
            tx.append(pub.events, pub.expected)
            return pub.summary

        return self.store.execute(decide)

    @command
    def void_scores(self, authority, data):
        """成绩无效: the candidate's scores of a sitting no longer count; a qualification
        resting on them is withdrawn."""
        who = load(AuthoritySchema(), authority)
        cmd = load(VoidScoresSchema(), data)
        stream = domain.candidate_stream(cmd["account_id"])

        def decide(tx):
            row = tx.conn.execute(select(tickets.c.application_id).where(
                tickets.c.account_id == cmd["account_id"],
                tickets.c.session_id == cmd["session_id"]).order_by(
                    (tickets.c.status == "cancelled"), tickets.c.ticket_number)).first()
            if row is None:
                raise NotFound("This candidate holds no admission ticket for this session: "
                               "there are no scores to void.",
                               {"account_id": cmd["account_id"], "session_id": cmd["session_id"]})
            record = domain.fold_candidate(cmd["account_id"], tx.read_stream(stream))
            events = domain.void_events(record, session_id=cmd["session_id"],
                                        application_id=row.application_id, reason=cmd["reason"],
                                        by=who["staff_id"], integrity=cmd["integrity"])
            tx.append(events, {stream: record.version})
            return {"account_id": cmd["account_id"], "session_id": cmd["session_id"],
                    "application_id": row.application_id, "voided": True,
                    "reason": cmd["reason"], "integrity": cmd["integrity"],
                    "withdrawn": [e.payload["qualification_id"] for e in events
                                  if e.type == "QualificationWithdrawn"]}

        return self.store.execute(decide)

    @command
    def session_results(self, authority, session_id, ticket_number=None):
        """The authority's view of the import in force (any time after an import)."""
        load(AuthoritySchema(), authority)
        args = load(SessionResultsSchema(), {"session_id": session_id,
                                             "ticket_number": ticket_number})
        sid = args["session_id"]
        doc = session_doc(self.store, sid)
        sheet = score_sheet(self.store, sid)
        if sheet.current is None:
            raise Refused(f"No scores have been imported for {sid} yet.",
                          {"session_id": "nothing imported"})
        marks = current_rows(self.store, sheet)
        with self.store.read_engine.connect() as c:
            views = ticket_views(c, sid, args["ticket_number"])
            rq = select(results.c.account_id, results.c.void_reason).where(
                results.c.session_id == sid, results.c.voided.is_(True))
            voids = dict(c.execute(rq).tuples().all())
        if args["ticket_number"] is not None and not views:
            raise NotFound(f"No ticket {args['ticket_number']} in {sid}.",
                           {"ticket_number": args["ticket_number"]})
        out = []
        for t in sorted(views.values(), key=lambda v: v.ticket_number):
            out.append({"ticket_number": t.ticket_number, "account_id": t.account_id,
                        "application_id": t.application_id, "name": t.candidate.get("name"),
                        "level": t.level, "ticket_status": t.status,
                        "voided": t.account_id in voids, "void_reason": voids.get(t.account_id),
                        "subjects": domain.subject_results(doc, t, marks.get(t.ticket_number, {}))})
        imp = sheet.current
        return {"session_id": sid, "published": sheet.published_at is not None,
                "published_at": sheet.published_at,
                "import": {k: imp[k] for k in (
                    "import_id", "filename", "sha256", "rows", "candidates", "absent_rows",
                    "missing", "imported_by", "imported_at")},
                "candidates": out}

    # -- candidates ----------------------------------------------------------------------

    @command
    def candidate_results(self, account_id, session_id):
        """查询成绩: a candidate's own results, after publication only."""
        args = load(CandidateRefSchema(), {"account_id": account_id, "session_id": session_id})
        doc = session_doc(self.store, args["session_id"])
        with self.store.read_engine.connect() as c:
            published_at = c.execute(select(sessions.c.published_at).where(
                sessions.c.session_id == doc.session_id)).scalar()
            domain.require_published(doc, published_at, self.clock.now())
            row = c.execute(select(results).where(
                results.c.account_id == args["account_id"],
                results.c.session_id == doc.session_id)).first()
            if row is None:
                raise NotFound("You have no results in this exam session.",
                               {"session_id": doc.session_id})
            qual = None
            if row.level is not None:
                q = c.execute(select(qualifications).where(
                    qualifications.c.account_id == args["account_id"],
                    qualifications.c.level == row.level).order_by(
                        (qualifications.c.status != "attained"),
                        qualifications.c.exam_year.desc())).first()
                if q is not None:
                    qual = {"qualification_id": q.qualification_id, "level": q.level,
                            "status": q.status, "session_id": q.session_id,
                            "exam_year": q.exam_year, "subjects": q.subjects,
                            "withdrawn_reason": q.withdrawn_reason}
        return domain.candidate_view(doc, row._mapping, qual)

    # -- counts --------------------------------------------------------------------------

    @command
    def score_counts(self, session_id, account_ids=None):
        """A session's results; of every candidate, or only of ``account_ids`` (a demo
        tells its own from the others': ``imported_rows`` stays the whole file's)."""
        ref = load(CountsRefSchema(), {"session_id": session_id, "account_ids": account_ids})
        sid, only = ref["session_id"], ref["account_ids"]
        mine = results.c.session_id == sid
        qual = and_(qualifications.c.session_id == sid, qualifications.c.status == "attained")
        if only is not None:
            mine = mine & results.c.account_id.in_(only)
            qual = qual & qualifications.c.account_id.in_(only)
        with self.store.read_engine.connect() as c:
            s = c.execute(select(sessions).where(sessions.c.session_id == sid)).first()
            resulted, passed = c.execute(select(
                func.count(results.c.published_at), func.coalesce(func.sum(results.c.passed_count), 0))
                .where(mine, results.c.published_at.is_not(None),
                       results.c.voided.is_(False))).one()
            qualified = c.execute(select(func.count()).select_from(qualifications)
                                  .where(qual)).scalar()
        published = s is not None and s.published_at is not None
        return {"session_id": sid, "imported_rows": (s.imported_rows if s else None) or 0,
                "published": published,
                "candidates": resulted if published else ((s.import_candidates if s else 0) or 0),
                "passed_subjects": int(passed), "qualified": qualified}

    def business_counts(self):
        with self.store.read_engine.connect() as c:
            return {
                "score_imports": dict(c.execute(select(imports.c.status, func.count())
                                                .group_by(imports.c.status)).all()),
                "results": {"published": c.execute(select(func.count()).select_from(results)
                                                   .where(results.c.published_at.is_not(None))).scalar(),
                            "voided": c.execute(select(func.count()).select_from(results)
                                                .where(results.c.voided.is_(True))).scalar()},
                "qualifications": dict(c.execute(select(qualifications.c.status, func.count())
                                                 .group_by(qualifications.c.status)).all()),
            }
