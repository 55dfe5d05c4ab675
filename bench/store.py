"""Event store figures: Kaowu's ``EventStore`` against the ``eventsourcing`` library's
application recorders, same events, same durability, same machine, same run.

- ``store_append_*``: one event per transaction, as a command appends it (a new event on
  an existing stream, at the expected version), one writer;
- ``store_append_batch_*``: 100 events per transaction (100 streams, expected versions);
- ``store_read_*``: the whole log of ~100k events read in batches of 5000 and decoded;
- ``store_replay_*``: that log replayed into a small read model (one upsert per event,
  into a table keyed by stream), in one transaction: ``Projection.rebuild`` for Kaowu
  (which folds the upserts of a row in memory and writes it once), the library's
  notifications decoded and upserted one by one for the baseline.

Both sides write JSON payloads of the account service's ``ProfileUpdated`` shape (~230
bytes), serialized inside the timed loop. SQLite: a fresh file in WAL mode,
``synchronous=FULL`` (both stores). PostgreSQL: a fresh database per measurement, the
server's own durability settings (``synchronous_commit`` as configured) for both.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator

import orjson

from bench.common import Context, Figure, fresh_pg, pg_params, pg_url, profile_payload

TOPIC = "services.account.domain:ProfileUpdated"
EVENT_TYPE = "ProfileUpdated"

SINGLE_EVENTS = 3000  # per single-append measurement
BATCH_EVENTS = 5000  # per batch-append measurement
BATCH_SIZE = 100
STREAMS = 100  # streams the appends rotate over
LOG_EVENTS = 100_000  # the log that read and replay go through
LOG_STREAMS = 20_000  # round robin: no stream twice in one read batch, nothing to coalesce
READ_BATCH = 5000  # Projection.rebuild's default


# -- the two stores ----------------------------------------------------------------------------

def _summary_projection():
    """A small read model: one row per stream, one upsert per event."""
    from sqlalchemy import Column, Integer, MetaData, String, Table

    from shared.projection import Projection, Upsert

    meta = MetaData()
    Table(
        "stream_summary", meta,
        Column("stream_id", String(200), primary_key=True),
        Column("version", Integer, nullable=False),
        Column("section", String(20), nullable=False),
        Column("completeness", Integer, nullable=False),
    )

    class StreamSummary(Projection):
        name = "stream_summary"
        metadata = meta

        def handle(self, event):
            p = event.payload
            yield Upsert("stream_summary", {"stream_id": event.stream_id},
                         {"version": event.stream_version, "section": p["section"],
                          "completeness": p["completeness"]})

    return StreamSummary()


# the baseline's read model: the same table, as SQLAlchemy creates it for Kaowu
SUMMARY_DDL = ("CREATE TABLE IF NOT EXISTS stream_summary (stream_id VARCHAR(200) NOT NULL, "
               "version INTEGER NOT NULL, section VARCHAR(20) NOT NULL, "
               "completeness INTEGER NOT NULL, PRIMARY KEY (stream_id))")
STATE_DDL = ("CREATE TABLE IF NOT EXISTS projection_state (name VARCHAR(100) NOT NULL, "
             "position BIGINT NOT NULL, PRIMARY KEY (name))")
UPSERT = {
    "sqlite": ("INSERT INTO stream_summary (stream_id, version, section, completeness) "
               "VALUES (?, ?, ?, ?) ON CONFLICT (stream_id) DO UPDATE SET "
               "version = excluded.version, section = excluded.section, "
               "completeness = excluded.completeness"),
    "pg": ("INSERT INTO stream_summary (stream_id, version, section, completeness) "
           "VALUES (%s, %s, %s, %s) ON CONFLICT (stream_id) DO UPDATE SET "
           "version = excluded.version, section = excluded.section, "
           "completeness = excluded.completeness"),
}
SET_POSITION = {
    "sqlite": ("INSERT INTO projection_state (name, position) VALUES (?, ?) "
               "ON CONFLICT (name) DO UPDATE SET position = excluded.position"),
    "pg": ("INSERT INTO projection_state (name, position) VALUES (%s, %s) "
           "ON CONFLICT (name) DO UPDATE SET position = excluded.position"),
}


def kaowu_store(url: str, projections=()):
    from shared.contracts import INTEGRATION
    from shared.eventstore.store import open_store

    return open_store(url, INTEGRATION, projections=projections, create_database=False)


def library_recorder(backend: str, where: str):
    """The library's application recorder on its own datastore, table created."""
    if backend == "sqlite":
        from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

        datastore = SQLiteDatastore(where)
        recorder = SQLiteApplicationRecorder(datastore)
    else:
        from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

        p = pg_params(where)
        datastore = PostgresDatastore(p["dbname"], p["host"], p["port"], p["user"], p["password"],
                                      pool_size=2)
        recorder = PostgresApplicationRecorder(datastore)
    recorder.create_table()
    return datastore, recorder


def _close_library(datastore):
    datastore.close()


def _close_kaowu(store):
    store.engine.dispose()


class _Where:
    """A fresh database for one measurement: a SQLite file, or a PostgreSQL database."""

    def __init__(self, ctx: Context, backend: str, name: str):
        self.ctx, self.backend, self.name = ctx, backend, name
        self._pg = None

    def __enter__(self):
        if self.backend == "sqlite":
            path = self.ctx.workdir / f"{self.name}.db"
            self.path = str(path)
            self.kaowu_url = f"sqlite:///{path}"
            return self
        self._pg = fresh_pg(self.ctx, self.name)
        self.path = self._pg.__enter__()
        self.kaowu_url = pg_url(self.path)
        return self

    def __exit__(self, *exc):
        if self._pg is not None:
            return self._pg.__exit__(*exc)
        import os

        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                os.remove(self.path + suffix)
        return False


# -- workloads ------------------------------------------------------------------------------------

class Streams:
    """Streams the appends rotate over, with each one's current version (expected version)."""

    def __init__(self, count: int):
        self.ids = [uuid.uuid4() for _ in range(count)]
        self.version = [0] * count
        self.n = 0

    def kaowu_id(self, i):
        return f"account-{self.ids[i].hex}"


def _kaowu_events(streams: Streams, count: int):
    """The next ``count`` events, one per stream in rotation: (NewEvent list, expected)."""
    from shared.events import NewEvent

    events, expected = [], {}
    for _ in range(count):
        i = streams.n % len(streams.ids)
        sid = streams.kaowu_id(i)
        expected.setdefault(sid, streams.version[i])
        events.append(NewEvent(sid, EVENT_TYPE, profile_payload(streams.ids[i].hex, streams.n)))
        streams.version[i] += 1
        streams.n += 1
    return events, expected


def _library_events(streams: Streams, count: int):
    from eventsourcing.persistence import StoredEvent

    out = []
    for _ in range(count):
        i = streams.n % len(streams.ids)
        streams.version[i] += 1
        out.append(StoredEvent(streams.ids[i], streams.version[i], TOPIC,
                               orjson.dumps(profile_payload(streams.ids[i].hex, streams.n))))
        streams.n += 1
    return out


def kaowu_append(url: str, events: int, per_tx: int, warmup: int) -> float:
    """Events/s appended through ``EventStore.append`` (validate, number, insert, commit)."""
    store = kaowu_store(url)
    try:
        streams = Streams(max(STREAMS, per_tx))
        for _ in range(warmup // per_tx):
            store.append(*_kaowu_events(streams, per_tx))
        t0 = time.perf_counter()
        for _ in range(events // per_tx):
            store.append(*_kaowu_events(streams, per_tx))
        elapsed = time.perf_counter() - t0
        assert store.head() == (warmup // per_tx + events // per_tx) * per_tx
        return (events // per_tx) * per_tx / elapsed
    finally:
        _close_kaowu(store)


def library_append(backend: str, where: str, events: int, per_tx: int, warmup: int) -> float:
    """Events/s inserted through the library recorder's ``insert_events``."""
    datastore, recorder = library_recorder(backend, where)
    try:
        streams = Streams(max(STREAMS, per_tx))
        for _ in range(warmup // per_tx):
            recorder.insert_events(_library_events(streams, per_tx))
        t0 = time.perf_counter()
        for _ in range(events // per_tx):
            recorder.insert_events(_library_events(streams, per_tx))
        elapsed = time.perf_counter() - t0
        assert recorder.max_notification_id() == (warmup // per_tx + events // per_tx) * per_tx
        return (events // per_tx) * per_tx / elapsed
    finally:
        _close_library(datastore)


def build_logs(kaowu, recorder, events: int, streams: int):
    """The same log in both stores: ``events`` events round robin over ``streams`` streams."""
    s_k, s_l = Streams(streams), Streams(streams)
    s_l.ids = s_k.ids
    chunk = 1000
    for done in range(0, events, chunk):
        kaowu.append(*_kaowu_events(s_k, min(chunk, events - done)))
        recorder.insert_events(_library_events(s_l, min(chunk, events - done)))


def kaowu_read(store) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = 0
    for _ev in store.iter_after(0, batch=READ_BATCH):
        n += 1
    return n / (time.perf_counter() - t0), n


def _notifications(recorder) -> Iterator[list]:
    start = 1
    while True:
        got = recorder.select_notifications(start, READ_BATCH)
        if got:
            yield got
        if len(got) < READ_BATCH:
            return
        start = got[-1].id + 1


def library_read(recorder) -> tuple[float, int]:
    loads = orjson.loads
    t0 = time.perf_counter()
    n = 0
    for batch in _notifications(recorder):
        for note in batch:
            loads(note.state)
            n += 1
    return n / (time.perf_counter() - t0), n


def kaowu_replay(store, projection) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = projection.rebuild(store, batch=READ_BATCH)
    return n / (time.perf_counter() - t0), n


def _handle(note):
    """The baseline's projection: the same row as StreamSummary.handle makes."""
    p = orjson.loads(note.state)
    return (str(note.originator_id), note.originator_version, p["section"], p["completeness"])


def library_replay(backend: str, recorder, where: str) -> tuple[float, int]:
    """Select notifications, decode, upsert the rows (executemany) and record the position,
    all in one write transaction on a connection of the baseline's own."""
    if backend == "sqlite":
        conn = sqlite3.connect(where, isolation_level=None, timeout=30)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(SUMMARY_DDL)
        conn.execute(STATE_DDL)
        begin, commit = (lambda: conn.execute("BEGIN IMMEDIATE")), (lambda: conn.execute("COMMIT"))
        cur = conn.cursor()
    else:
        import psycopg

        conn = psycopg.connect(**pg_params(where), autocommit=True)
        conn.execute(SUMMARY_DDL)
        conn.execute(STATE_DDL)
        begin, commit = (lambda: conn.execute("BEGIN")), (lambda: conn.execute("COMMIT"))
        cur = conn.cursor()
    upsert, set_position = UPSERT[backend], SET_POSITION[backend]
    try:
        t0 = time.perf_counter()
        begin()
        cur.execute("DELETE FROM stream_summary")
        n = last = 0
        for batch in _notifications(recorder):
            cur.executemany(upsert, [_handle(note) for note in batch])
            n += len(batch)
            last = batch[-1].id
        cur.execute(set_position, ("stream_summary", last))
        commit()
        return n / (time.perf_counter() - t0), n
    finally:
        conn.close()


# -- figures --------------------------------------------------------------------------------------

BACKENDS = (("sqlite", "SQLite"), ("pg", "PostgreSQL"))
REPEATS = 2  # each side measured this many times, in alternating order; the best is kept


def _best(ctx: Context, baseline, kaowu) -> tuple[float, float, dict]:
    """Measure baseline and Kaowu REPEATS times each, alternating which goes first (ABBA),
    and keep each side's best: the machine is shared, noise only ever slows a run down."""
    runs = {"baseline": [], "kaowu": []}
    for r in range(ctx.n(REPEATS)):
        for side in (("baseline", "kaowu") if r % 2 == 0 else ("kaowu", "baseline")):
            runs[side].append((baseline if side == "baseline" else kaowu)(r))
    detail = {"runs": {k: [round(v) for v in vs] for k, vs in runs.items()}}
    return max(runs["kaowu"]), max(runs["baseline"]), detail


def run(ctx: Context):
    single, batch = ctx.n(SINGLE_EVENTS, 200), ctx.n(BATCH_EVENTS, 1000)
    for backend, label in BACKENDS:
        for kind, per_tx, events, warmup in (("", 1, single, 200), ("_batch", BATCH_SIZE, batch, 500)):
            name = f"store_append{kind}_{backend}"
            if not ctx.wanted(name):
                continue
            ctx.log(f"{name}: {events} events, {per_tx} per transaction, {label}")

            def lib(r, backend=backend, name=name, events=events, per_tx=per_tx, warmup=warmup):
                with _Where(ctx, backend, f"{name}_lib{r}") as w:
                    return library_append(backend, w.path, events, per_tx, warmup)

            def kaowu(r, backend=backend, name=name, events=events, per_tx=per_tx, warmup=warmup):
                with _Where(ctx, backend, f"{name}_kaowu{r}") as w:
                    return kaowu_append(w.kaowu_url, events, per_tx, warmup)

            value, base, detail = _best(ctx, lib, kaowu)
            yield Figure(name, value, "events/s", base, target=1.5,
                         detail={"events": events, "per_transaction": per_tx, **detail})

    log_events, log_streams = ctx.n(LOG_EVENTS, 10_000), ctx.n(LOG_STREAMS, READ_BATCH)
    for backend, label in BACKENDS:
        read_name, replay_name = f"store_read_{backend}", f"store_replay_{backend}"
        if not ctx.wanted(read_name, replay_name):
            continue
        with _Where(ctx, backend, f"log_{backend}_lib") as wl, \
                _Where(ctx, backend, f"log_{backend}_kaowu") as wk:
            ctx.log(f"building two logs of {log_events} events over {log_streams} streams, {label}")
            projection = _summary_projection()
            store = kaowu_store(wk.kaowu_url, projections=[projection])
            store.projections = []  # build the log alone; the read model is rebuilt below
            datastore, recorder = library_recorder(backend, wl.path)
            try:
                build_logs(store, recorder, log_events, log_streams)
                store.projections = [projection]
                detail = {"events": log_events, "streams": log_streams, "batch": READ_BATCH}

                def counted(fn, *args):
                    def measure(_r):
                        rate, n = fn(*args)
                        assert n == log_events, (fn.__name__, n, log_events)
                        return rate
                    return measure

                if ctx.wanted(read_name):
                    ctx.log(f"{read_name}: read and decode the whole log")
                    value, base, runs = _best(ctx, counted(library_read, recorder),
                                              counted(kaowu_read, store))
                    yield Figure(read_name, value, "events/s", base, detail={**detail, **runs})
                if ctx.wanted(replay_name):
                    ctx.log(f"{replay_name}: rebuild of a one-upsert-per-event read model")
                    value, base, runs = _best(ctx,
                                              counted(library_replay, backend, recorder, wl.path),
                                              counted(kaowu_replay, store, projection))
                    yield Figure(replay_name, value, "events/s", base, target=2.0,
                                 detail={**detail, **runs})
            finally:
                _close_library(datastore)
                _close_kaowu(store)
