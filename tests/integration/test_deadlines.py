"""The one deadline mechanism (shared.deadlines) against a real log, on SQLite and
PostgreSQL: an effect runs once, across restarts (also in the middle of a batched effect),
replicas (two racing for it: one commits, the other finds the record), clock jumps either
way and a window amended before and after it closed; what ran is reported from the log."""

from datetime import timedelta

import pytest
from marshmallow import Schema, fields

from shared.clock import ControlledClock
from shared.contracts import EventRegistry
from shared.deadlines import DEADLINE_REACHED, MORE, DeadlineRunner, Due, deadline_stream
from shared.events import NewEvent
from shared.eventstore.store import open_store
from shared.session import reference_session


class Reached(Schema):
    session_id = fields.String(required=True)
    window = fields.String(required=True)
    published = fields.Boolean()


class Worked(Schema):
    session_id = fields.String(required=True)
    batch = fields.Integer(required=True)


REGISTRY = EventRegistry()
REGISTRY.register(DEADLINE_REACHED, Reached, public=False)
REGISTRY.register("Worked", Worked, public=False)

DOC = reference_session()
SID = DOC.session_id
CLOSES = DOC.window("confirmation").end_exclusive


def work(tx, batch=1):
    """An effect: one event on the session's work stream, decided on its version."""
    stream = f"work-{SID}"
    version = tx.stream_version(stream)
    tx.append([NewEvent(stream, "Worked", {"session_id": SID, "batch": batch})], {stream: version})


def worked(store):
    return [e for e in store.events_after(0, 10_000) if e.type == "Worked"]


def records(store):
    return [(e.payload["session_id"], e.payload["window"])
            for e in store.events_after(0, 10_000) if e.type == DEADLINE_REACHED]


def schedule(doc, effect=work, **kw):
    return [Due(doc.session_id, "confirmation", doc.window("confirmation").end_exclusive,
                effect, **kw)]


@pytest.fixture
def log(db_url):
    clock = ControlledClock(CLOCKS_START)
    store = open_store(db_url, REGISTRY, clock=clock)
    yield store, clock
    store.engine.dispose()


CLOCKS_START = CLOSES - timedelta(days=1)


def test_once_only_and_not_before_its_window_closes(log):
    store, clock = log
    runner = DeadlineRunner("test")
    assert runner.run_due(store, CLOSES - timedelta(seconds=1), schedule(DOC)) == []
    assert worked(store) == [] and runner.report(store, clock.now())["overdue"] == []
    clock.set(CLOSES)
    assert runner.run_due(store, CLOSES, schedule(DOC)) == [(SID, "confirmation")]
    for _ in range(3):  # every later tick: nothing
        assert runner.run_due(store, CLOSES + timedelta(minutes=5), schedule(DOC)) == []
    assert len(worked(store)) == 1 and records(store) == [(SID, "confirmation")]
    ran = runner.report(store, clock.now())["ran"]
    assert ran == [{"session_id": SID, "window": "confirmation",
                    "ran_at": "2026-04-18T08:00:01+00:00", "ran_at_local": "2026-04-18 16:00:01"}]
    assert DeadlineRunner("test").report(store, clock.now())["ran"] == ran  # just restarted


def test_restart_in_the_middle_writes_neither_or_both(log):
    store, _ = log

    def crashes(tx):
        work(tx)
        raise RuntimeError("killed between the effect and the record")

    first = DeadlineRunner("test")
    assert first.run_due(store, CLOSES, schedule(DOC, crashes)) == []
    assert worked(store) == [] and records(store) == []  # rolled back whole
    assert first.overdue_by_window(CLOSES + timedelta(seconds=90)) == {"confirmation": 90.0}
    restarted = DeadlineRunner("test")  # a new process: nothing in memory
    assert restarted.run_due(store, CLOSES, schedule(DOC)) == [(SID, "confirmation")]
    assert DeadlineRunner("test").run_due(store, CLOSES, schedule(DOC)) == []
    assert len(worked(store)) == 1 and records(store) == [(SID, "confirmation")]
    assert restarted.overdue_by_window(CLOSES + timedelta(seconds=90)) == {}


def test_a_batched_effect_resumes_after_a_restart_and_is_recorded_with_its_last_batch(log):
    store, _ = log
    calls = []

    def batches(tx, crash_at=None):
        done = tx.stream_version(f"work-{SID}")
        calls.append(done)
        if done == crash_at:
            raise RuntimeError("killed between batches")
        work(tx, done + 1)
        return MORE if done + 1 < 3 else {"published": True}

    assert DeadlineRunner("test").run_due(
        store, CLOSES, schedule(DOC, lambda tx: batches(tx, crash_at=1))) == []
    assert [e.payload["batch"] for e in worked(store)] == [1] and records(store) == []
    assert DeadlineRunner("test").run_due(store, CLOSES, schedule(DOC, batches)) == \
        [(SID, "confirmation")]
    assert [e.payload["batch"] for e in worked(store)] == [1, 2, 3]
    [record] = [e for e in store.events_after(0, 100) if e.type == DEADLINE_REACHED]
    assert record.payload == {"session_id": SID, "window": "confirmation", "published": True}
    assert record.position == worked(store)[-1].position + 1  # in the last batch's unit


def test_clock_jumps_forward_run_everything_due_in_order_and_back_nothing_again(log):
    store, _ = log
    order = []

    def effect(name):
        return lambda tx: order.append(name)

    plan = [Due(SID, name, DOC.window(name).end_exclusive, effect(name))
            for name in ("exam", "confirmation", "ticket_printing")]
    runner = DeadlineRunner("test")
    late = DOC.window("exam").end_exclusive + timedelta(days=30)
    assert len(runner.run_due(store, late, plan)) == 3
    assert order == ["confirmation", "ticket_printing", "exam"]  # by when each fell due
    assert runner.run_due(store, CLOSES, plan) == []  # the clock set back: not again
    assert DeadlineRunner("test").run_due(store, late, plan) == [] and len(order) == 3


def test_a_window_amended_before_it_closed_runs_at_the_new_time_and_after_not_again(log):
    store, _ = log
    w = DOC.window("confirmation")
    later = DOC.amended("confirmation", w.start, w.end + timedelta(days=1))
    runner = DeadlineRunner("test")
    assert runner.run_due(store, CLOSES, schedule(later)) == []  # the old close: not yet
    assert runner.run_due(store, CLOSES + timedelta(days=1), schedule(later)) == \
        [(SID, "confirmation")]
    # amended once more, after it ran (TimetableAmended): once per (session, window)
    again = later.amended("confirmation", w.start, w.end + timedelta(days=2))
    assert runner.run_due(store, CLOSES + timedelta(days=3), schedule(again)) == []
    assert DeadlineRunner("test").run_due(store, CLOSES + timedelta(days=3), schedule(again)) == []
    assert len(worked(store)) == 1


def test_a_failing_effect_holds_back_its_session_only_and_shows_as_overdue(log):
    store, clock = log
    other = reference_session().to_dict()
    other["session_id"] = "other"
    from shared.session import SessionDocument

    other = SessionDocument.from_dict(other)

    def broken(tx):
        raise RuntimeError("bug")

    runner = DeadlineRunner("test")
    plan = [Due(SID, "confirmation", CLOSES, broken), Due(SID, "seating", CLOSES, work),
            Due("other", "confirmation", CLOSES, lambda tx: None)]
    assert runner.run_due(store, CLOSES, plan) == [("other", "confirmation")]
    assert worked(store) == []  # seating waits for the plan before it
    report = runner.report(store, CLOSES + timedelta(minutes=2))
    assert {(o["session_id"], o["window"], o["overdue_seconds"]) for o in report["overdue"]} == \
        {(SID, "confirmation", 120.0), (SID, "seating", 120.0)}
    assert [(r["session_id"], r["window"]) for r in report["ran"]] == [("other", "confirmation")]


def test_two_replicas_racing_for_one_deadline_run_it_once(pg_url):
    """Replica A decides its effect; before A commits, replica B runs the same deadline
    whole. A's record then conflicts (expected version 0): A's unit rolls back, is re-run,
    finds B's record and does nothing."""
    clock = ControlledClock(CLOSES)
    a = open_store(pg_url, REGISTRY, clock=clock)
    b = open_store(pg_url, REGISTRY, clock=clock)
    replica_a, replica_b = DeadlineRunner("test"), DeadlineRunner("test")
    attempts = []

    def a_effect(tx):
        attempts.append(1)
        work(tx)
        if len(attempts) == 1:  # B gets there first, while A's unit is open
            assert replica_b.run_due(b, CLOSES, schedule(DOC)) == [(SID, "confirmation")]

    try:
        assert replica_a.run_due(a, CLOSES, schedule(DOC, a_effect)) == []
        assert len(attempts) == 1  # re-run: the record was there, the effect not called
        assert len(worked(a)) == 1 and records(a) == [(SID, "confirmation")]
        assert a.read_stream(deadline_stream(SID, "confirmation"))[0].stream_version == 1
        assert replica_a.run_due(a, CLOSES, schedule(DOC, a_effect)) == []
        assert replica_a.report(a, CLOSES)["overdue"] == []
    finally:
        a.engine.dispose()
        b.engine.dispose()

