"""Projection.rebuild's bulk path on SQLite and PostgreSQL: rows folded in memory, written
once (new rows) or as batched upserts, updates and deletes (rows written before the window
moved on), with the same rows as the live read model, column for column: JSON null stays
JSON null, SQL NULL stays SQL NULL, Python-side defaults are filled in, and a failing write
leaves the old read model as it was."""

import decimal
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, fields
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    func,
    select,
)

from shared.contracts import EventRegistry
from shared.events import NewEvent
from shared.eventstore.store import open_store
from shared.projection import Delete, Projection, Update, Upsert, snapshot
from shared.projection import changes as projection_changes

pytestmark = pytest.mark.integration


class Step(Schema):
    op = fields.String(required=True)
    n = fields.Integer(required=True)
    doc = fields.Raw(allow_none=True)


class StepV1(Schema):  # what v1 events looked like: "count" became "n"
    op = fields.String(required=True)
    count = fields.Integer(required=True)


def registry():
    r = EventRegistry()
    r.register("Step", Step, version=2, upcasters={1: lambda p: {"op": p["op"], "n": p.pop("count"),
                                                                 "doc": None}})
    r.register("Ignored", Schema)
    return r


meta = MetaData()
items = Table(
    "items", meta,
    Column("item_id", String(40), primary_key=True),
    Column("n", Integer, nullable=False),
    Column("doc", JSON),  # None is stored as JSON null (SQLAlchemy's default)
    Column("label", String(40)),  # nullable: SQL NULL
    Column("flag", Boolean, nullable=False),
)
parts = Table(
    "parts", meta,
    Column("item_id", String(40), primary_key=True),
    Column("part", Integer, primary_key=True),
    Column("doc", JSON(none_as_null=True)),  # None is SQL NULL here
    Column("n", Integer, nullable=False),
)


class Items(Projection):
    """Every kind of change, composite keys, JSON and nullable columns."""

    name = "items"
    metadata = meta

    def handle(self, event):
        if event.type != "Step":
            return
        p, key = event.payload, {"item_id": event.stream_id}
        n = p["n"]
        match p["op"]:
            case "upsert":
                yield Upsert("items", key, {"n": n, "doc": p["doc"], "label": None, "flag": n % 2 == 0})
            case "update":
                yield Update("items", key, {"n": n, "label": f"l{n}"})
            case "delete":
                yield Delete("items", key)
            case "part":
                # key columns given in another order than the first time: the same row
                yield Upsert("parts", {"part": n % 3, "item_id": event.stream_id},
                             {"doc": p["doc"], "n": n})
                yield Update("items", key, {"doc": {"parts": n % 3}})
            case "unpart":
                yield Delete("parts", {"item_id": event.stream_id, "part": n % 3})
            case "touch-part":
                yield Update("parts", {"item_id": event.stream_id, "part": n % 3}, {"n": n})


OPS = ["upsert", "update", "delete", "part", "unpart", "touch-part"]


def append_all(store, plan):
    for op, item, n, doc in plan:
        store.append([NewEvent(f"item-{item}", "Step", {"op": op, "n": n, "doc": doc})])
    store.append([NewEvent("other", "Ignored", {})])


def null_counts(store):
    """What snapshot() cannot tell apart: SQL NULL and JSON null."""
    with store.engine.connect() as c:
        return (c.execute(select(func.count()).select_from(items).where(items.c.doc.is_(None))).scalar(),
                c.execute(select(func.count()).select_from(parts).where(parts.c.doc.is_(None))).scalar(),
                c.execute(select(func.count()).select_from(items).where(items.c.label.is_(None))).scalar())


docs = st.one_of(st.none(), st.just({"a": [1, "二"]}), st.just({"k": None}), st.just("s"))
plans = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 5), st.integers(0, 1000), docs),
                 min_size=1, max_size=60)


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(plan=plans, window=st.sampled_from([1, 2, 5, 100_000]), batch=st.sampled_from([1, 3, 20_000]))
def test_rebuild_equals_live_sqlite(tmp_path_factory, plan, window, batch):
    proj = Items()
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('fold')}/e.db", registry(),
                       projections=[proj])
    append_all(store, plan)
    live, nulls = snapshot(store.engine, proj), null_counts(store)
    assert proj.rebuild(store, batch=batch, window=window) == store.head()
    assert snapshot(store.engine, proj) == live
    assert null_counts(store) == nulls
    store.engine.dispose()


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(plan=plans, changes=st.sampled_from([1, 2, 5]))
def test_a_large_append_is_written_in_slices_to_the_same_effect(tmp_path_factory, plan, changes):
    """One append of many events writes its read-model changes APPLY_CHANGES at a time
    (a publication of scores is ~50,000 events): the rows end as appending one by one
    leaves them."""
    one_by_one = open_store(f"sqlite:///{tmp_path_factory.mktemp('one')}/e.db", registry(),
                            projections=[Items()])
    append_all(one_by_one, plan)
    at_once = open_store(f"sqlite:///{tmp_path_factory.mktemp('once')}/e.db", registry(),
                         projections=[Items()])
    was, projection_changes.APPLY_CHANGES = projection_changes.APPLY_CHANGES, changes
    try:
        at_once.append([NewEvent(f"item-{item}", "Step", {"op": op, "n": n, "doc": doc})
                        for op, item, n, doc in plan])
    finally:
        projection_changes.APPLY_CHANGES = was
    assert snapshot(at_once.engine, Items()) == snapshot(one_by_one.engine, Items())
    assert null_counts(at_once) == null_counts(one_by_one)
    for store in (one_by_one, at_once):
        store.engine.dispose()


# what a statement's text must carry through as it is (the writer may inline a document)
QUOTED = {"q": "it's a \\ \"quote\" at 100%s; '' \\'"}


@pytest.mark.parametrize("window", [1, 7, 100_000])
def test_rebuild_equals_live(db_url, window):
    """Both backends; a small window sends most rows down the 'written before' path."""
    proj = Items()
    store = open_store(db_url, registry(), projections=[proj])
    rnd = random.Random(window)
    plan = [(rnd.choice(OPS), rnd.randrange(12), rnd.randrange(1000),
             rnd.choice([None, {"a": [1, "二"]}, {"k": None}, "s", QUOTED])) for _ in range(400)]
    append_all(store, plan)
    live, nulls = snapshot(store.engine, proj), null_counts(store)
    assert nulls[0] == 0 and nulls[1] and nulls[2]  # JSON null in items.doc, SQL NULLs elsewhere
    for _ in range(2):  # the second replaces a full read model
        assert proj.rebuild(store, batch=50, window=window) == store.head()
        assert snapshot(store.engine, proj) == live
        assert null_counts(store) == nulls
    assert store.projection_positions()["items"] == store.head()


def test_rebuild_upcasts_old_events(db_url):
    proj = Items()
    store = open_store(db_url, registry(), projections=[proj])
    from shared.eventstore.tables import events_table

    with store.write_engine.begin() as c:  # a v1 event as an older version of the code wrote it
        c.execute(events_table.insert().values(position=1, stream_id="item-old", stream_version=1,
                                               type="Step", schema_version=1,
                                               payload='{"op": "upsert", "count": 7}', metadata="{}"))
        c.execute(store_head_update(1))
    proj.rebuild(store)
    with store.engine.connect() as c:
        assert c.execute(select(items.c.n, items.c.doc)).all() == [(7, None)]


def store_head_update(position):
    from sqlalchemy import update

    from shared.eventstore.tables import log_head

    return update(log_head).values(position=position)


# -- columns the fast paths leave to others ---------------------------------------------------

odd_meta = MetaData()
ledger = Table(
    "ledger", odd_meta,
    Column("entry_id", String(40), primary_key=True),
    Column("amount", Numeric(10, 2), nullable=False),  # Decimal: not through JSON
    Column("status", String(20), nullable=False, default="open"),  # Python-side default
)
totals = Table(
    "totals", odd_meta,
    Column("account", String(40), primary_key=True),
    Column("amount", Numeric(10, 2), nullable=False),
)


class Ledger(Projection):
    name = "ledger"
    metadata = odd_meta

    def handle(self, event):
        n = event.payload["n"]
        yield Upsert("ledger", {"entry_id": event.stream_id}, {"amount": decimal.Decimal(n) / 4})
        yield Upsert("totals", {"account": f"a{n % 3}"}, {"amount": decimal.Decimal(n) / 8})


@pytest.mark.parametrize("window", [2, 100_000])
def test_rebuild_with_defaults_and_decimals(db_url, window):
    proj = Ledger()
    store = open_store(db_url, registry(), projections=[proj])
    for i in range(40):
        store.append([NewEvent(f"e{i % 11}", "Step", {"op": "x", "n": i, "doc": None})])
    live = snapshot(store.engine, proj)
    assert {r["status"] for r in live["ledger"]} == {"open"}
    proj.rebuild(store, batch=7, window=window)
    assert snapshot(store.engine, proj) == live


class Broken(Items):
    """Leaves out a required column: PostgreSQL refuses the row."""

    def handle(self, event):
        yield Upsert("items", {"item_id": event.stream_id}, {"doc": None})


def test_failed_rebuild_changes_nothing(db_url):
    proj = Items()
    store = open_store(db_url, registry(), projections=[proj])
    append_all(store, [("upsert", i, i, None) for i in range(30)])
    live = snapshot(store.engine, proj)
    with pytest.raises(Exception, match="(?i)null"):
        Broken().rebuild(store, batch=5, window=3)
    assert snapshot(store.engine, proj) == live
    with pytest.raises(RuntimeError, match="handle failed"):
        Failing().rebuild(store, batch=5, window=3)
    assert snapshot(store.engine, proj) == live
    assert store.engine.pool.checkedout() == 0  # the log's reader gave its connection back
    assert proj.rebuild(store) == store.head()  # and the store still works
    assert store.engine.pool.checkedout() == 0


class Failing(Items):
    """Fails in Python halfway through the log, while the reader is fetching ahead."""

    def handle(self, event):
        if event.position == 17:
            raise RuntimeError("handle failed")
        return super().handle(event)


class Declared(Items):
    """Names the types it handles: nothing else reaches it, live or rebuilt."""

    event_types = frozenset({"Step"})

    def handle(self, event):
        assert event.type == "Step", event.type
        return super().handle(event)


def test_declared_event_types(db_url):
    proj = Declared()
    store = open_store(db_url, registry(), projections=[proj])
    rnd = random.Random(3)
    append_all(store, [(rnd.choice(OPS), rnd.randrange(5), i, None) for i in range(60)])
    store.append([NewEvent("other", "Ignored", {}) for _ in range(3)])
    live = snapshot(store.engine, proj)
    assert proj.rebuild(store, batch=4, window=3) == store.head()
    assert snapshot(store.engine, proj) == live


# -- PostgreSQL: built beside the old tables, swapped in ----------------------------------------

def catalog(store):
    """What a swap must keep: index and constraint names and definitions, column types."""
    from sqlalchemy import text

    with store.engine.connect() as c:
        oids = c.execute(text("SELECT to_regclass('items')::oid, to_regclass('parts')::oid")).one()
        indexes = c.execute(text(
            "SELECT tablename, indexname, indexdef FROM pg_indexes "
            "WHERE tablename IN ('items', 'parts') ORDER BY 1, 2")).all()
        constraints = c.execute(text(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid IN ('items'::regclass, 'parts'::regclass) ORDER BY 1, 2")).all()
        columns = c.execute(text(
            "SELECT table_name, column_name, data_type, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_name IN ('items', 'parts') "
            "ORDER BY 1, ordinal_position")).all()
        leftovers = c.execute(text("SELECT count(*) FROM pg_class WHERE relname LIKE 'kaowu_rb%'")).scalar()
    return oids, (indexes, constraints, columns), leftovers


def test_postgresql_rebuild_swaps_in_new_tables(pg_url):
    from sqlalchemy import Index

    proj = Items()
    store = open_store(pg_url, registry(), projections=[proj])
    with store.engine.begin() as c:  # an index a later migration added, outside the metadata
        Index("ix_items_label", items.c.label, postgresql_where=items.c.n > 5).create(c)
    append_all(store, [("upsert", i % 7, i, {"i": i}) for i in range(50)])
    live = snapshot(store.engine, proj)
    oids, before, _ = catalog(store)
    proj.rebuild(store, window=4)
    new_oids, after, leftovers = catalog(store)
    assert new_oids[0] != oids[0] and new_oids[1] != oids[1]  # new tables...
    assert after == before  # ...with the same names, indexes, constraints and columns
    assert leftovers == 0
    assert snapshot(store.engine, proj) == live


class Slow(Items):
    """Takes its time over each event (eventlet's sleep: other green threads run meanwhile)."""

    def handle(self, event):
        import time

        time.sleep(0.002)
        return super().handle(event)


def test_postgresql_rebuild_lets_appends_through(pg_url):
    """Appends (and their read-model writes) go on while the new model is built; the events
    appended meanwhile are in the rebuilt model."""
    import time

    import eventlet

    proj = Slow()
    store = open_store(pg_url, registry(), projections=[proj])
    append_all(store, [("upsert", i % 9, i, None) for i in range(200)])
    done_at = []

    def keep_appending():
        for i in range(20):
            store.append([NewEvent(f"item-{i % 4}", "Step", {"op": "update", "n": 5000 + i, "doc": None})])
        done_at.append(time.monotonic())

    writer = eventlet.spawn_after(0.05, keep_appending)
    proj.rebuild(store, batch=25)
    finished = time.monotonic()
    writer.wait()
    assert done_at and done_at[0] < finished  # not held up until the rebuild committed
    live = snapshot(store.engine, proj)
    proj.rebuild(store)
    assert snapshot(store.engine, proj) == live
    with store.engine.connect() as c:
        assert c.execute(select(func.max(items.c.n))).scalar() == 5019


fk_meta = MetaData()
owners = Table("owners", fk_meta, Column("owner_id", String(40), primary_key=True),
               Column("n", Integer, nullable=False))
pets = Table("pets", fk_meta, Column("pet_id", String(40), primary_key=True),
             Column("owner_id", String(40), __import__("sqlalchemy").ForeignKey("owners.owner_id"),
                    nullable=False))


class WithForeignKey(Projection):
    name = "owners"
    metadata = fk_meta

    def handle(self, event):
        yield Upsert("owners", {"owner_id": event.stream_id}, {"n": event.payload["n"]})
        yield Upsert("pets", {"pet_id": f"p{event.payload['n'] % 5}"}, {"owner_id": event.stream_id})


def test_postgresql_rebuild_in_place_where_tables_cannot_be_swapped(pg_url):
    from shared.projection.rebuild import ShadowTables

    proj = WithForeignKey()
    store = open_store(pg_url, registry(), projections=[proj])
    for i in range(30):
        store.append([NewEvent(f"o{i % 6}", "Step", {"op": "x", "n": i, "doc": None})])
    assert ShadowTables.plan(store, proj) is None  # a foreign key: dropping would cascade
    live = snapshot(store.engine, proj)
    proj.rebuild(store, window=3)
    assert snapshot(store.engine, proj) == live
