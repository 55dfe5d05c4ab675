"""The scoring service's commands on its own store, without the bus, on both backends
(SQLite is what ``make run`` uses): a refused file stores nothing, a re-import supersedes,
the deadline publishes once, voiding withdraws, and the read model rebuilds to the same
rows. The marking centre's file is SIMULATED here."""

from datetime import datetime

import pytest

from services.scoring import domain
from services.scoring.projection import ScoringProjection
from services.scoring.schemas import REGISTRY
from services.scoring.service import ScoringService, publication, run_import, score_sheet
from shared.clock import SHANGHAI
from shared.deadlines import DeadlineRunner, Due
from shared.errors import Refused, ValidationFailed
from shared.events import NewEvent
from shared.eventstore.store import open_store
from shared.projection import snapshot
from shared.session import reference_session

pytestmark = pytest.mark.integration

WHO = {"staff_id": "authority-01"}
DOC = reference_session()
SID = DOC.session_id


def at(*args):
    return datetime(*args, tzinfo=SHANGHAI)


def ticket(i, subjects=("L1-LAW", "L1-DATA", "L1-CASE")):
    number = f"20262916L1{i:06d}"
    return NewEvent(domain.ticket_stream(number), "TicketRecorded", {
        "ticket_number": number, "session_id": SID, "account_id": f"acc{i}",
        "application_id": f"{SID}.acc{i}", "level": "L1", "subjects": list(subjects),
        "exemption": None, "candidate": {"name": f"考生{i}", "id_type": "resident_id",
                                         "id_number": f"3101041980010100{i:02d}"},
        "exam_year": 2026})


def csv_text(*rows):
    return "ticket_number,subject,score\n" + "\n".join(rows) + "\n"


def test_import_publish_void_and_rebuild(db_url):
    store = open_store(db_url, REGISTRY, projections=[ScoringProjection()])
    store.append([domain.session_recorded(DOC), ticket(1), ticket(2), ticket(3)])
    store.append([NewEvent(domain.ticket_stream("20262916L1000003"), "AbsenceRecorded", {
        "ticket_number": "20262916L1000003", "session_id": SID, "account_id": "acc3",
        "application_id": f"{SID}.acc3", "subject": "L1-CASE"})])
    after_exam = at(2026, 6, 20, 10)

    head = store.head()
    with pytest.raises(ValidationFailed) as exc:
        run_import(store, WHO, {"session_id": SID, "filename": "x.csv", "csv": csv_text(
            "20262916L1000001,L1-LAW,80", "20262916L1000003,L1-CASE,80")}, after_exam)
    assert list(exc.value.fields) == ["row 3"]
    assert store.head() == head  # nothing stored from a refused file

    first = run_import(store, WHO, {"session_id": SID, "filename": "a.csv", "csv": csv_text(
        "20262916L1000001,L1-LAW,10")}, after_exam)
    rows = [f"20262916L100000{i},{s},{80 if i == 1 else 71.9}" for i in (1, 2)
            for s in ("L1-LAW", "L1-DATA", "L1-CASE")] + ["20262916L1000003,L1-CASE,缺考"]
    second = run_import(store, WHO, {"session_id": SID, "filename": "b.csv",
                                     "csv": csv_text(*rows)}, after_exam)
    assert second["supersedes"] == first["import_id"] and second["rows"] == 7
    assert second["missing"] == 2  # 3's LAW and DATA: no row yet, not absent

    service = ScoringService()
    # the timer's step, before and at the published time
    sheet = score_sheet(store, SID)
    assert sheet.current["import_id"] == second["import_id"] and not sheet.published_at
    runner, start = DeadlineRunner("scoring"), DOC.window("scores").start
    due = [Due(SID, "scores", start, lambda tx: ScoringService._scores_deadline(tx, DOC))]
    assert runner.run_due(store, start, due) == [(SID, "scores")]
    assert [e.type for e in store.events_after(0, 10_000)].count("ScoresPublished") == 1
    assert runner.run_due(store, start, due) == []  # once
    assert DeadlineRunner("scoring").run_due(store, start, due) == []  # after a restart too
    assert [e.type for e in store.events_after(0, 10_000)].count("ScoresPublished") == 1
    published = score_sheet(store, SID).published_at
    assert published == "2026-08-15T01:00:00+00:00"
    with pytest.raises(Refused):
        store.execute(lambda tx: publication(tx, DOC, score_sheet(store, SID, conn=tx.conn),
                                             at(2026, 8, 16)))
    with pytest.raises(Refused):
        run_import(store, WHO, {"session_id": SID, "filename": "c.csv",
                                "csv": csv_text(*rows)}, at(2026, 8, 16))

    attained = [e.payload for e in store.events_after(0, 10_000)
                if e.type == "QualificationAttained"]
    assert [q["account_id"] for q in attained] == ["acc1"]
    service.store = store
    assert service.business_counts()["qualifications"] == {"attained": 1}

    # voiding acc1's scores withdraws the qualification
    voided = domain.void_events(
        domain.fold_candidate("acc1", store.read_stream("candidate-acc1")), session_id=SID,
        application_id=f"{SID}.acc1", reason="替考", by="authority-01", integrity=True)
    store.append(voided)
    assert service.business_counts()["qualifications"] == {"withdrawn": 1}

    projection = store.projections[0]
    live = snapshot(store.engine, projection)
    assert len(live["imports"]) == 2 and len(live["results"]) == 3
    projection.rebuild(store)
    assert snapshot(store.engine, projection) == live


def test_scores_deadline_schedule(tmp_path):
    """What /metrics exports for the KaowuDeadlineNotRun alert: the publication falls due
    at the scores window's start, and counts as run once the timer's step has run."""
    from nameko.testing.services import worker_factory

    from shared.clock import ControlledClock

    store = open_store(f"sqlite:///{tmp_path}/scoring.db", REGISTRY,
                       projections=[ScoringProjection()])
    store.append([domain.session_recorded(DOC)])
    start = DOC.window("scores").start
    service = worker_factory(ScoringService, store=store, clock=ControlledClock(start),
                             deadline_effects=DeadlineRunner("scoring"))
    assert list(service.deadline_schedule()) == [(SID, "scores", start, False)]
    service.clock.set(at(2026, 8, 15, 9, 2))
    assert service.scrape_gauges()["kaowu_deadline_overdue_seconds"] == [((SID, "scores"), 120.0)]
    service.deadlines()
    assert list(service.deadline_schedule()) == [(SID, "scores", start, True)]
    assert service.scrape_gauges()["kaowu_deadline_overdue_seconds"] == []
    store.engine.dispose()
