"""The event store on SQLite and PostgreSQL: concurrency, gapless positions, batches,
upcasting, migrations, and rebuilds that equal the live read model."""

import contextlib
import threading

import eventlet
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, fields
from sqlalchemy import Column, Integer, MetaData, String, Table

from shared.contracts import EventRegistry
from shared.errors import Conflict, ValidationFailed
from shared.events import NewEvent
from shared.eventstore import unit_of_work
from shared.eventstore.store import open_store
from shared.eventstore.unit_of_work import ConcurrencyConflict, Context
from shared.projection import Delete, Projection, Update, Upsert, snapshot

pytestmark = pytest.mark.integration


class Counted(Schema):
    n = fields.Integer(required=True)


class Renamed(Schema):
    title = fields.String(required=True)


def registry():
    r = EventRegistry()
    r.register("Counted", Counted)
    # v1 called the field "name"; v2 calls it "title"
    r.register("Renamed", Renamed, version=2, upcasters={1: lambda p: {"title": p.pop("name")}})
    r.register("Closed", Schema)
    return r


tmeta = MetaData()
things = Table("things", tmeta, Column("id", String(50), primary_key=True),
               Column("n", Integer, nullable=False), Column("title", String(50)))


class Things(Projection):
    name = "things"
    metadata = tmeta

    def handle(self, event):
        key = {"id": event.stream_id}
        if event.type == "Counted":
            yield Upsert("things", key, {"n": event.payload["n"]})
        elif event.type == "Renamed":
            yield Update("things", key, {"title": event.payload["title"]})
        elif event.type == "Closed":
            yield Delete("things", key)


def test_append_read_and_positions(db_url):
    store = open_store(db_url, registry())
    a = store.append([NewEvent("s-1", "Counted", {"n": 1}), NewEvent("s-2", "Counted", {"n": 2})],
                     {"s-1": 0, "s-2": 0}, Context(correlation_id="c1", actor="test"))
    assert [e.position for e in a] == [1, 2]
    assert [e.stream_version for e in a] == [1, 1]
    store.append([NewEvent("s-1", "Counted", {"n": 3})], {"s-1": 1})
    got = store.read_stream("s-1")
    assert [(e.stream_version, e.payload["n"]) for e in got] == [(1, 1), (2, 3)]
    assert got[0].metadata["correlation_id"] == "c1" and got[0].metadata["actor"] == "test"
    assert got[0].metadata["event_id"] and got[0].metadata["occurred_at"]
    assert store.head() == 3
    assert [e.position for e in store.events_after(1, 10)] == [2, 3]
    assert [e.position for e in store.iter_after(0, batch=2)] == [1, 2, 3]


def test_a_large_unit_is_flushed_in_slices_with_the_same_positions(db_url, monkeypatch):
    """A transaction of many events goes into the log FLUSH_ROWS at a time (PostgreSQL):
    positions still gapless, in append order, after what was there; a conflict in a later
    slice still undoes the whole unit."""
    monkeypatch.setattr(unit_of_work, "FLUSH_ROWS", 3)
    store = open_store(db_url, registry())
    store.append([NewEvent("s-0", "Counted", {"n": 0})])
    got = store.append([NewEvent(f"s-{i % 4}", "Counted", {"n": i}) for i in range(1, 11)])
    assert [e.position for e in got] == list(range(2, 12))
    logged = store.events_after(0, 100)
    assert [e.position for e in logged] == list(range(1, 12))
    assert [e.payload["n"] for e in logged] == list(range(11))
    assert [e.stream_version for e in store.read_stream("s-1")] == [1, 2, 3]
    with pytest.raises(ConcurrencyConflict):  # s-0 v1 taken: the 8th of 8 events clashes
        store.append([NewEvent(f"t-{i}", "Counted", {"n": i}) for i in range(7)]
                     + [NewEvent("s-0", "Counted", {"n": 99})], {"s-0": 0})
    assert store.head() == 11 and store.read_stream("t-0") == []


def test_conflict_is_typed_and_writes_nothing(db_url):
    store = open_store(db_url, registry())
    store.append([NewEvent("s", "Counted", {"n": 1})], {"s": 0})
    with pytest.raises(ConcurrencyConflict) as exc:
        store.append([NewEvent("s", "Counted", {"n": 2}), NewEvent("t", "Counted", {"n": 9})], {"s": 0})
    assert "s" in exc.value.stream_ids
    assert store.head() == 1  # the position handed out was given back: still gapless
    assert store.read_stream("t") == []
    store.append([NewEvent("t", "Counted", {"n": 9})], {"t": 0})
    assert [e.position for e in store.events_after(0)] == [1, 2]


def test_bad_payload_refused_and_nothing_written(db_url):
    store = open_store(db_url, registry())
    with pytest.raises(ValidationFailed) as exc:
        store.append([NewEvent("s", "Counted", {"n": "many"})])
    assert "n" in exc.value.fields
    assert store.head() == 0


def test_upcasting_on_read(db_url):
    store = open_store(db_url, registry())
    store.append([NewEvent("s", "Renamed", {"title": "new"})])
    # an event written by an older version of the code, as it lies in the log
    from shared.eventstore.tables import events_table
    with store.write_engine.begin() as c:
        c.execute(events_table.insert().values(position=2, stream_id="s", stream_version=2,
                                               type="Renamed", schema_version=1,
                                               payload='{"name": "old"}', metadata="{}"))
    evs = store.read_stream("s")
    assert [(e.schema_version, e.payload) for e in evs] == [(2, {"title": "new"}), (2, {"title": "old"})]


def test_migrations_are_applied_once(db_url):
    store = open_store(db_url, registry(), projections=[Things()])
    assert store.migrate() == []
    store2 = open_store(db_url, registry(), projections=[Things()])
    assert store2.head() == 0


def test_execute_retries_a_lost_race(db_url):
    """The command helper re-runs the decision on fresh state after a conflict."""
    store = open_store(db_url, registry())
    store.append([NewEvent("s", "Counted", {"n": 0})], {"s": 0})
    raced = []

    def command(tx):
        evs = tx.read_stream("s")
        if not raced:  # someone else appends between our read and our append
            raced.append(1)
            store.append([NewEvent("s", "Counted", {"n": 100})], {"s": len(evs)})
        tx.append([NewEvent("s", "Counted", {"n": evs[-1].payload["n"] + 1})], {"s": len(evs)})
        return len(evs)

    if store.dialect == "sqlite":
        # SQLite holds one writer at a time: the racing append cannot happen inside ours
        raced.append(1)
        store.append([NewEvent("s", "Counted", {"n": 100})], {"s": 1})
    assert store.execute(command) == 2
    assert [e.payload["n"] for e in store.read_stream("s")] == [0, 100, 101]


def test_execute_gives_up_with_conflict(db_url):
    store = open_store(db_url, registry())

    def always_stale(tx):
        tx.append([NewEvent("s", "Counted", {"n": 1})], {"s": 0})
        raise ConcurrencyConflict(["s"])

    with pytest.raises(Conflict):
        store.execute(always_stale, retries=2)
    assert store.head() == 0


def test_two_concurrent_writers_on_one_stream_give_one_conflict(pg_url):
    store = open_store(pg_url, registry())
    store.append([NewEvent("s", "Counted", {"n": 0})], {"s": 0})
    barrier = eventlet.semaphore.Semaphore(0)
    results = []

    def writer(n):
        try:
            with store.transaction() as tx:
                version = len(tx.read_stream("s"))
                barrier.acquire()  # both have read version 1 before either appends
                tx.append([NewEvent("s", "Counted", {"n": n})], {"s": version})
            results.append("ok")
        except ConcurrencyConflict:
            results.append("conflict")

    threads = [eventlet.spawn(writer, n) for n in (1, 2)]
    eventlet.sleep(0.2)
    barrier.release()
    barrier.release()
    for t in threads:
        t.wait()
    assert sorted(results) == ["conflict", "ok"]
    assert [e.stream_version for e in store.read_stream("s")] == [1, 2]


def test_positions_gapless_and_in_commit_order_under_concurrency(pg_url):
    """Many writers (some failing on purpose); a reader tailing the log never sees a
    position appear behind one it has already read."""
    store = open_store(pg_url, registry())
    seen, stop = [], threading.Event()

    def tail():
        pos = 0
        while not stop.is_set() or pos < store.head():
            for e in store.events_after(pos, 500):
                seen.append(e.position)
                pos = e.position
            eventlet.sleep(0)

    def writer(w):
        for i in range(25):
            stream = f"w{w}-{i % 3}"
            with contextlib.suppress(ConcurrencyConflict):
                store.append([NewEvent(stream, "Counted", {"n": i})],
                             {stream: (i // 3) if i % 5 else 0})

    reader = eventlet.spawn(tail)
    list(eventlet.GreenPool(8).imap(writer, range(8)))
    stop.set()
    reader.wait()
    head = store.head()
    assert [e.position for e in store.events_after(0, 10_000)] == list(range(1, head + 1))
    assert seen == list(range(1, head + 1))


# -- rebuild equals the live read model --------------------------------------------------

ops = st.lists(
    st.tuples(st.sampled_from(["Counted", "Renamed", "CountedRenamed", "RenamedCounted", "Closed"]),
              st.integers(0, 4), st.integers(0, 1000)),
    min_size=1, max_size=40)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=ops, batch=st.sampled_from([1, 2, 7, 5000]))
def test_rebuild_equals_live(tmp_path_factory, ops, batch):
    """Live: applied per append. Rebuild: replayed in batches, coalesced. Same rows."""
    url = f"sqlite:///{tmp_path_factory.mktemp('rb')}/e.db"
    proj = Things()
    store = open_store(url, registry(), projections=[proj])
    for kind, sid, n in ops:
        stream = f"thing-{sid}"
        counted = NewEvent(stream, "Counted", {"n": n})
        renamed = NewEvent(stream, "Renamed", {"title": str(n)})  # no row yet: no effect
        store.append({"Counted": [counted], "Renamed": [renamed],
                      "CountedRenamed": [counted, renamed], "RenamedCounted": [renamed, counted],
                      "Closed": [NewEvent(stream, "Closed", {})]}[kind])
    live = snapshot(store.engine, proj)
    assert proj.rebuild(store, batch=batch) == store.head()
    assert snapshot(store.engine, proj) == live


def test_rebuild_on_postgresql_while_writing(pg_url):
    proj = Things()
    store = open_store(pg_url, registry(), projections=[proj])
    for i in range(300):
        store.append([NewEvent(f"thing-{i % 17}", "Counted", {"n": i})])
    writer_done = []

    def keep_writing():
        for i in range(100):
            store.append([NewEvent(f"thing-{i % 5}", "Counted", {"n": 1000 + i})])
        writer_done.append(True)

    w = eventlet.spawn(keep_writing)
    proj.rebuild(store, batch=50)
    w.wait()
    live = snapshot(store.engine, proj)
    proj.rebuild(store)
    assert snapshot(store.engine, proj) == live
    assert store.projection_positions()["things"] == store.head() == 400
