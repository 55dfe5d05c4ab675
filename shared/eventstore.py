"""The append-only event log of one service, on SQLAlchemy 2 Core (SQLite or PostgreSQL).

Ideas from the ``eventsourcing`` library, in one code path for both databases:

- optimistic concurrency on (stream_id, stream_version): a unique key, so two writers that
  decided on the same version cannot both commit; the loser gets ``ConcurrencyConflict``;
- gapless positions in commit order: an append takes the next positions from a one-row
  ``log_head`` counter with ``UPDATE … RETURNING``. The row lock is held to commit, so the
  next writer waits and numbers after it, and a rolled-back append gives its numbers back;
- the log is the outbox (the relay reads it), projections are updated in the same
  transaction as the append, and a consumer's tracking record too.

A ``Transaction`` is the unit of work: read streams, decide, append, track, commit once.
"""

import contextlib
import gc
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import NullPool, QueuePool

from shared import migrations
from shared.clock import SystemClock, iso
from shared.contracts import EventRegistry
from shared.errors import Conflict
from shared.events import STORED_EVENT_SLOTS, NewEvent, StoredEvent, stored_event

# SQLite makes an INTEGER PRIMARY KEY the rowid: the fastest key it has.
_BigInt = BigInteger().with_variant(Integer, "sqlite")

meta = MetaData()

events_table = Table(
    "events", meta,
    Column("position", _BigInt, primary_key=True, autoincrement=False),
    Column("stream_id", String(200), nullable=False),
    Column("stream_version", Integer, nullable=False),
    Column("type", String(100), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("payload", Text, nullable=False),
    Column("metadata", Text, nullable=False),
    UniqueConstraint("stream_id", "stream_version", name="uq_events_stream_version"),
)

log_head = Table(
    "log_head", meta,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("position", _BigInt, nullable=False),
)

# how far a consumer has applied each upstream log (tracking records)
tracking_table = Table(
    "tracking", meta,
    Column("upstream", String(100), primary_key=True),
    Column("position", _BigInt, nullable=False),
    Column("log_id", String(32)),  # which log of the upstream the position counts in
)

# this log's identity: positions count in one log; a restored or reset database is another
log_identity = Table(
    "log_identity", meta,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("log_id", String(32), nullable=False),
)

# how far the relay has published this log
relay_table = Table(
    "relay_state", meta,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("position", _BigInt, nullable=False),
)

projection_state = Table(
    "projection_state", meta,
    Column("name", String(100), primary_key=True),
    Column("position", _BigInt, nullable=False),
)

# content-addressed uploads (photos, proofs): events carry the hash, never the bytes
blobs_table = Table(
    "blobs", meta,
    Column("sha256", String(64), primary_key=True),
    Column("content_type", String(100), nullable=False),
    Column("size", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
)


class ConcurrencyConflict(Exception):
    """Another writer appended to the stream first. Re-read and decide again."""

    def __init__(self, stream_ids):
        super().__init__(f"concurrent append to {', '.join(sorted(stream_ids))}")
        self.stream_ids = set(stream_ids)


@dataclass
class Context:
    """Who and why: copied into every event's metadata."""

    correlation_id: str | None = None
    causation_id: str | None = None
    actor: str | None = None


# -- engine ------------------------------------------------------------------------------

def _json_column(obj) -> str:
    """JSON columns of read models: orjson (several times faster than ``json.dumps``, which
    SQLAlchemy uses by default); what it cannot encode (integers past 64 bits) goes the
    standard library's way."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(obj)


def make_engine(url: str, **kwargs):
    """An engine for the event log. SQLite gets WAL and ``BEGIN IMMEDIATE`` for writes."""
    kwargs.setdefault("json_serializer", _json_column)
    kwargs.setdefault("json_deserializer", orjson.loads)
    if url.startswith("sqlite"):
        if ":memory:" not in url:
            # a pool of open connections: connecting (and its PRAGMAs) per transaction costs
            # more than the transaction. (Each pooled :memory: connection would be a database
            # of its own, so memory URLs keep SQLAlchemy's default single connection.)
            kwargs.setdefault("poolclass", QueuePool)
            kwargs.setdefault("pool_size", 5)
            kwargs.setdefault("max_overflow", 10)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               **kwargs)

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            if ":memory:" not in url:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            # IMMEDIATE takes the write lock up front: no deadlocking lock upgrades.
            # Under eventlet nothing may yield while it is held (SQLite's wait blocks the hub),
            # so nothing in this package does I/O other than SQLite inside a write.
            # (On the driver's connection: SQLAlchemy's statement machinery costs more than
            # the BEGIN itself.)
            conn.connection.dbapi_connection.execute(
                "BEGIN IMMEDIATE" if conn.get_execution_options().get("kaowu_write") else "BEGIN")
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    # no pre-ping (a round trip per transaction): a dropped connection is invalidated when it
    # fails, and EventStore.execute runs the command again on a fresh one
    kwargs.setdefault("pool_recycle", 1800)
    # batch executemany of upserts and updates (read models) into few round trips
    kwargs.setdefault("executemany_mode", "values_plus_batch")
    return create_engine(url, **kwargs)


def ensure_database(url: str):
    """Create the PostgreSQL database named in ``url`` if it does not exist (dev and tests)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() != "postgresql":
        if u.database and u.database != ":memory:":
            import os
            os.makedirs(os.path.dirname(os.path.abspath(u.database)), exist_ok=True)
        return
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                  {"n": u.database}).scalar()
            if not exists:
                try:
                    conn.exec_driver_sql(f'CREATE DATABASE "{u.database}"')
                except Exception:  # another replica created it meanwhile
                    if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                        {"n": u.database}).scalar():
                        raise
    finally:
        admin.dispose()


_OS_THREADING = None


@contextmanager
def gc_paused():
    """No cyclic garbage collection while events are decoded: thousands of dicts are made
    that all live on (the batch), so collections keep scanning them for cycles they do not
    have; that took two thirds of the time of reading a batch of the log. Process-wide, for
    as long as the block runs (nothing in it makes cycles)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def os_threading():
    """``threading`` and ``queue`` with real OS threads, also where eventlet has patched them
    (rebuilds overlap the database's work with Python's: the driver blocks in C, which a
    green thread cannot overlap)."""
    global _OS_THREADING
    if _OS_THREADING is None:
        import queue
        import sys

        patcher = sys.modules.get("eventlet.patcher")  # not imported: nothing is patched
        if patcher is not None and patcher.is_monkey_patched("thread"):
            _OS_THREADING = (patcher.original("threading"), patcher.original("queue"))
        else:
            _OS_THREADING = (threading, queue)
    return _OS_THREADING


class DatabaseWorker:
    """One OS thread that runs database calls handed to it, in order (rebuilds: the next
    batch of the log is fetched and the last one's rows written while Python folds).

    A driver connection is never used by two threads at once (psycopg2 interleaves a COPY
    with another thread's query): every call on the rebuild's connection goes through here
    until ``close``. What a call raises skips the rest and comes back from the next
    ``submit``, ``call(...).result()``, ``wait`` or ``close``.
    """

    def __init__(self, depth: int = 4):
        threading_, queue_ = os_threading()
        self._q = queue_.Queue(depth)
        self._event = threading_.Event
        self._error: BaseException | None = None
        self._cancelled = False
        self._thread = threading_.Thread(target=self._run, name="kaowu-db-worker", daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            fn = self._q.get()
            if fn is None:
                return
            if self._error is None and not self._cancelled:
                try:
                    fn()
                except BaseException as exc:  # handed back to the submitting thread
                    self._error = exc

    def _raise(self):
        if self._error is not None:
            raise self._error

    def submit(self, fn: Callable[[], object]):
        self._raise()
        self._q.put(fn)

    def call(self, fn: Callable[[], object]) -> "_Future":
        future = _Future(self)
        self.submit(lambda: future.set(fn()))
        return future

    def cleanup(self, fn: Callable[[], object]):
        """``fn`` after what was handed over before, or now if the thread has stopped."""
        if self._thread.is_alive() and not self._cancelled and self._error is None:
            self._q.put(fn)
        else:  # the thread runs nothing more (stopped, or skipping after a failure)
            with contextlib.suppress(Exception):
                fn()

    def wait(self):
        """Until everything handed over so far has run."""
        self.call(lambda: None).result()

    def close(self):
        self._q.put(None)
        self._thread.join()
        self._raise()

    def abort(self) -> BaseException | None:
        """Stop without running what is queued; what a call raised, if anything."""
        self._cancelled = True
        self._q.put(None)
        self._thread.join()
        return self._error


class _Done:
    def __init__(self, value):
        self._value = value

    def result(self):
        return self._value


class _Future:
    def __init__(self, worker: DatabaseWorker):
        self._worker = worker
        self._done = worker._event()
        self._value = None

    def set(self, value):
        self._value = value
        self._done.set()

    def result(self):
        while not self._done.wait(0.05):
            self._worker._raise()  # it failed before reaching this call
            if not self._worker._thread.is_alive():
                raise RuntimeError("the database worker stopped")
        return self._value


def _dumps(obj) -> str:
    return orjson.dumps(obj).decode()


# -- the store ---------------------------------------------------------------------------

class EventStore:
    """One service's log. Thread- and greenthread-safe; cheap to share."""

    def __init__(self, engine, registry: EventRegistry, *, clock=None, projections=()):
        self.engine = engine
        self.write_engine = engine.execution_options(kaowu_write=True)
        self.dialect = engine.dialect.name
        self.registry = registry
        self.clock = clock or SystemClock()
        self.projections = list(projections)
        # the Alembic histories of this database: the core tables', each projection's
        self.histories = migrations.names_of(self.projections)
        self._listeners: list[Callable[[list[StoredEvent]], None]] = []
        self._log_id: str | None = None
        self._lock = threading.Lock()
        self._versions: dict[str, int | None] = {}

    def migrate(self) -> list[str]:
        """Upgrade the schema to the heads of its histories; the revisions applied now. A
        projection whose history had a ``rebuild`` revision applied now (its tables made
        anew, empty: rows keyed differently) is then rebuilt from the log."""
        applied = migrations.upgrade(self.engine, self.histories, extra=[
            p.metadata for p in self.projections if p.history is None])
        rebuilt = migrations.rebuilds(self.histories, applied)
        for p in self.projections:
            if p.history in rebuilt:
                p.rebuild(self)
        return applied

    def schema_heads(self) -> set[str]:
        """The Alembic revisions the database is at."""
        with self.engine.connect() as conn:
            return migrations.current(conn)

    def on_commit(self, listener: Callable[[list[StoredEvent]], None]):
        """Call ``listener(events)`` with what each transaction appended, after it commits
        (wakes the relay, counts events for metrics)."""
        self._listeners.append(listener)

    # -- writing -------------------------------------------------------------------------

    @contextmanager
    def transaction(self, context: Context | None = None) -> Iterator["Transaction"]:
        with self.write_engine.begin() as conn:
            tx = Transaction(self, conn, context or Context())
            yield tx
            tx.flush()
        if tx.appended:
            for listener in self._listeners:
                listener(tx.appended)

    def append(self, events: Sequence[NewEvent], expected: dict[str, int | None] | None = None,
               context: Context | None = None) -> list[StoredEvent]:
        with self.transaction(context) as tx:
            tx.append(events, expected)
        return tx.appended

    def execute(self, command: Callable[["Transaction"], object], context: Context | None = None,
                retries: int = 8):
        """Run a command (read, decide, append) in a transaction; on a version conflict
        re-run it from the start with fresh state. Gives up with ``Conflict``."""
        for attempt in range(retries):
            try:
                with self.transaction(context) as tx:
                    return command(tx)
            except DBAPIError as exc:
                # a connection the database or a network hiccup dropped: once more, fresh
                if not exc.connection_invalidated or attempt == retries - 1:
                    raise
            except ConcurrencyConflict as exc:
                if attempt == retries - 1:
                    raise Conflict("Someone else changed this at the same moment; please try again.",
                                   {"streams": sorted(exc.stream_ids)}) from None
                time.sleep(random.uniform(0, 0.005 * (attempt + 1)))

    # -- reading -------------------------------------------------------------------------

    def _current_version(self, type_: str) -> int | None:
        """The registry's schema version of ``type_`` (None: not registered), cached."""
        try:
            return self._versions[type_]
        except KeyError:
            v = self._versions[type_] = (self.registry.get(type_).version
                                         if type_ in self.registry else None)
            return v

    def _decode_all(self, result) -> list[StoredEvent]:
        loads, make, versions = orjson.loads, stored_event, self._versions
        out = []
        with gc_paused():
            self._decode_rows(result.tuples().all(), out, loads, make, versions)
        return out

    def _decode_rows(self, rows, out, loads, make, versions):
        for position, stream_id, stream_version, type_, schema_version, payload, metadata in rows:
            payload = loads(payload)
            current = versions[type_] if type_ in versions else self._current_version(type_)
            if schema_version != current and current is not None:
                schema_version, payload = self.registry.upcast(type_, schema_version, payload)
            out.append(make(position, stream_id, stream_version, type_, schema_version,
                            payload, loads(metadata)))

    def read_stream(self, stream_id: str, conn=None) -> list[StoredEvent]:
        q = select(events_table).where(events_table.c.stream_id == stream_id).order_by(
            events_table.c.stream_version)
        if conn is not None:
            return self._decode_all(conn.execute(q))
        with self.engine.connect() as c:
            return self._decode_all(c.execute(q))

    def events_after(self, position: int, limit: int = 1000, *, types: Iterable[str] | None = None,
                     stream_id: str | None = None, conn=None) -> list[StoredEvent]:
        q = select(events_table).where(events_table.c.position > position)
        if types:
            q = q.where(events_table.c.type.in_(list(types)))
        if stream_id:
            q = q.where(events_table.c.stream_id == stream_id)
        q = q.order_by(events_table.c.position).limit(limit)
        if conn is not None:
            return self._decode_all(conn.execute(q))
        with self.engine.connect() as c:
            return self._decode_all(c.execute(q))

    def iter_after(self, position: int = 0, batch: int = 5000, conn=None) -> Iterator[StoredEvent]:
        """Every event after ``position``, read in batches (``replay``; without ``conn``, on
        a connection of its own until the iteration ends)."""
        if conn is not None:
            for got in self.replay(conn, position, None, batch):
                yield from got
            return
        # PostgreSQL: the next batch is fetched while this one is consumed
        worker = DatabaseWorker() if self.dialect == "postgresql" else None
        with self.engine.connect() as c:
            try:
                for got in self.replay(c, position, None, batch, worker=worker):
                    yield from got
            finally:  # before the connection goes back to the pool
                if worker is not None:
                    worker.close()

    def replay(self, conn, after: int = 0, upto: int | None = None, batch: int = 20000,
               worker: DatabaseWorker | None = None,
               types: Iterable[str] | None = None) -> Iterator[list[StoredEvent]]:
        """The events after ``after`` up to ``upto`` (all: None), in batches, for rebuilds.

        Read on ``conn`` (in its transaction) with the driver's own cursor, the JSON decoded
        from bytes; payloads are not validated again (they were when appended) and are
        upcast only when stored at an older schema version than the registry's. With a
        ``worker`` (PostgreSQL), the next batch is fetched on its thread while the caller
        works on this one. ``types``: only events of these types.
        """
        raw = conn.connection.dbapi_connection.cursor()
        types = sorted(types) if types is not None else None
        if self.dialect == "postgresql":
            import psycopg2.extensions

            psycopg2.extensions.register_type(psycopg2.extensions.BYTES, raw)  # text as bytes
            sql = ("SELECT position, stream_id, stream_version, type, schema_version, payload, "
                   "metadata FROM events WHERE position > %s AND position <= %s"
                   + (" AND type = ANY(%s)" if types is not None else "")
                   + " ORDER BY position LIMIT %s")
        else:
            sql = ("SELECT position, stream_id, stream_version, type, schema_version, "
                   "CAST(payload AS BLOB), CAST(metadata AS BLOB) FROM events "
                   "WHERE position > ? AND position <= ?"
                   + (f" AND type IN ({', '.join('?' * len(types))})" if types else
                      " AND 0" if types is not None else "")
                   + " ORDER BY position LIMIT ?")
        upto = (1 << 62) if upto is None else upto
        only = () if types is None else (types,) if self.dialect == "postgresql" else tuple(types)

        def fetch(after):
            raw.execute(sql, (after, upto, *only, batch))
            return raw.fetchall()

        def fetch_after(after):
            return worker.call(lambda: fetch(after)) if worker is not None else _Done(fetch(after))

        loads, new, cls = orjson.loads, object.__new__, StoredEvent
        s0, s1, s2, s3, s4, s5, s6 = STORED_EVENT_SLOTS  # StoredEvent built inline: per event
        types: dict = {}  # type as read -> (name, current schema version or None)
        try:
            pending = fetch_after(after) if after < upto else None
            while pending is not None:
                rows = pending.result()
                if not rows:
                    return
                last = rows[-1][0]
                pending = fetch_after(last) if len(rows) == batch and last < upto else None
                out = []
                append = out.append
                with gc_paused():
                    for position, stream_id, stream_version, type_, schema_version, payload, md in rows:
                        known = types.get(type_)
                        if known is None:
                            name = type_.decode() if type_.__class__ is bytes else type_
                            known = types[type_] = (name, self._current_version(name))
                        name, current = known
                        payload = loads(payload)
                        if schema_version != current and current is not None:
                            schema_version, payload = self.registry.upcast(name, schema_version,
                                                                           payload)
                        ev = new(cls)
                        s0(ev, position)
                        s1(ev, stream_id.decode() if stream_id.__class__ is bytes else stream_id)
                        s2(ev, stream_version)
                        s3(ev, name)
                        s4(ev, schema_version)
                        s5(ev, payload)
                        s6(ev, loads(md))
                        append(ev)
                del rows
                yield out
        finally:
            if worker is None:
                raw.close()
            else:
                worker.cleanup(raw.close)

    def head(self) -> int:
        with self.engine.connect() as c:
            return c.execute(select(log_head.c.position).where(log_head.c.id == 1)).scalar_one()

    @property
    def log_id(self) -> str:
        if self._log_id is None:
            with self.engine.connect() as c:
                self._log_id = c.execute(select(log_identity.c.log_id)).scalar_one()
        return self._log_id

    def tracked_position(self, upstream: str) -> int:
        return self.tracked(upstream)[0]

    def tracked(self, upstream: str) -> tuple[int, str | None]:
        """(position, log id) of what this service has applied of ``upstream``'s log."""
        with self.engine.connect() as c:
            row = c.execute(select(tracking_table.c.position, tracking_table.c.log_id).where(
                tracking_table.c.upstream == upstream)).first()
        return (row.position, row.log_id) if row else (0, None)

    def tracking(self) -> dict[str, int]:
        with self.engine.connect() as c:
            return dict(c.execute(select(tracking_table.c.upstream, tracking_table.c.position)).all())

    def relay_position(self) -> int:
        with self.engine.connect() as c:
            return c.execute(select(relay_table.c.position)).scalar_one()

    def projection_positions(self) -> dict[str, int]:
        """Read models are written in the transaction of every append, so each stands at
        the log's head; ``projection_state`` records how far the last rebuild went."""
        head = self.head()
        with self.engine.connect() as c:
            rebuilt = dict(c.execute(select(projection_state.c.name, projection_state.c.position)).all())
        return {p.name: max(head, rebuilt.get(p.name, 0)) for p in self.projections}

    def get_blob(self, sha256: str):
        with self.engine.connect() as c:
            row = c.execute(select(blobs_table).where(blobs_table.c.sha256 == sha256)).first()
        return None if row is None else {"content_type": row.content_type, "data": row.data}

    def public_view(self, ev: StoredEvent, service: str) -> dict:
        """What leaves the service: private events keep their place but not their payload."""
        d = ev.to_dict()
        d["service"] = service
        d["log_id"] = self.log_id
        public = self.registry.public_payload(ev.type, ev.payload)
        if public is None:
            d["payload"] = {}
            d["private"] = True
        return d


# flush: the head row is locked and advanced first, then the events take the positions
# before it (gapless, in commit order: the lock is held to commit)
_PG_FLUSH = ("UPDATE log_head SET position = position + %s WHERE id = 1; "
             "INSERT INTO events (position, stream_id, stream_version, type, schema_version, "
             "payload, metadata) SELECT h.position + v.o, v.s, v.v, v.t, v.sv, v.p, v.m "
             "FROM (SELECT position FROM log_head WHERE id = 1) AS h, "
             "(VALUES {rows}) AS v(o, s, v, t, sv, p, m) RETURNING position")
_PG_INSERT = ("INSERT INTO events (position, stream_id, stream_version, type, schema_version, "
              "payload, metadata) VALUES {rows}")
FLUSH_ROWS = 1000  # events per INSERT when a transaction commits many
_SQLITE_ADVANCE_HEAD = "UPDATE log_head SET position = position + ? WHERE id = 1 RETURNING position"
_SQLITE_INSERT = ("INSERT INTO events (position, stream_id, stream_version, type, schema_version, "
                  "payload, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)")


def _pg_rows(pending, start: int) -> tuple[str, list]:
    """A VALUES list and its parameters for events numbered from ``start`` on."""
    params = []
    for i, (se, payload, md) in enumerate(pending, start=start):
        params += (i, se.stream_id, se.stream_version, se.type, se.schema_version, payload, md)
    return ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(pending)), params


def _wrapped(conn, cursor, exc) -> DBAPIError:
    """A driver error as SQLAlchemy would have raised it, the connection invalidated if it
    is gone (``EventStore.execute`` then runs the command again on a fresh one)."""
    dialect = conn.dialect
    gone = dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor)
    if gone:
        conn.invalidate(exc)
    return DBAPIError.instance(None, None, exc, dialect.dbapi.Error,
                               connection_invalidated=gone, dialect=dialect)


@dataclass
class Transaction:
    """The unit of work. ``append`` validates and versions events and writes the read
    models at once; the events themselves go into the log at commit (``flush``): then the
    log's head row is locked, positions handed out, the events inserted and the
    transaction committed, so the lock that serializes every writer is held briefly and is
    always the last one taken (no deadlocks with read-model rows)."""

    store: EventStore
    conn: object
    context: Context
    appended: list[StoredEvent] = field(default_factory=list)
    _pending: list[tuple[StoredEvent, str, str]] = field(default_factory=list)
    _versions: dict[str, int] = field(default_factory=dict)

    def read_stream(self, stream_id: str) -> list[StoredEvent]:
        """The stream as this transaction sees it: what is in the log, then what this
        transaction has appended to it (positions not given yet)."""
        mine = [se for se, _, _ in self._pending if se.stream_id == stream_id]
        return self.store.read_stream(stream_id, conn=self.conn) + mine

    def stream_version(self, stream_id: str) -> int:
        if stream_id in self._versions:
            return self._versions[stream_id]
        q = select(events_table.c.stream_version).where(
            events_table.c.stream_id == stream_id).order_by(events_table.c.stream_version.desc()).limit(1)
        return self.conn.execute(q).scalar() or 0

    def append(self, new_events: Sequence[NewEvent],
               expected: dict[str, int | None] | None = None) -> list[StoredEvent]:
        """Append in order. ``expected[stream]`` is the version the decision was made on
        (0: the stream must be empty); a stream left out is appended after whatever is there.
        Returns the events with their versions; their positions are given at commit."""
        if not new_events:
            return []
        expected = dict(expected or {})
        registry = self.store.registry
        next_version: dict[str, int] = {}
        for ev in new_events:
            registry.validate(ev.type, ev.payload)
            if ev.stream_id not in next_version:
                base = expected.get(ev.stream_id)
                if base is not None and ev.stream_id in self._versions and base != self._versions[ev.stream_id]:
                    raise ConcurrencyConflict([ev.stream_id])
                next_version[ev.stream_id] = self.stream_version(ev.stream_id) if base is None else base
        occurred_at = iso(self.store.clock.now())
        ctx = self.context
        provisional = []
        for ev in new_events:
            next_version[ev.stream_id] += 1
            md = {
                "event_id": uuid.uuid4().hex,
                "correlation_id": ctx.correlation_id,
                "causation_id": ctx.causation_id,
                "actor": ctx.actor,
                "occurred_at": occurred_at,
            }
            se = stored_event(0, ev.stream_id, next_version[ev.stream_id], ev.type,
                              registry.get(ev.type).version, ev.payload, md)
            provisional.append(se)
            self._pending.append((se, _dumps(ev.payload), _dumps(md)))
        self._versions.update(next_version)
        for projection in self.store.projections:
            projection.apply(self.conn, provisional)
        return provisional

    def flush(self):
        """Into the log: head lock, positions, one insert. Called by the store at commit.

        On the driver's own cursor (SQLAlchemy's statement machinery costs more than these
        two statements). PostgreSQL: one round trip for both, the positions taken from the
        head row just advanced (``RETURNING position`` gives them back)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        n = len(pending)
        cur = self.conn.connection.dbapi_connection.cursor()
        try:
            if self.store.dialect == "postgresql":
                # the head advances once for the whole unit, in the first statement; a large
                # unit's other events follow in statements of FLUSH_ROWS (one statement of
                # ~50,000 rows held every parameter quoted, the query and libpq's copy of it
                # at once: +128 MiB when scoring published 10,000 candidates)
                # (the first statement's positions are offsets from the advanced head)
                rows, params = _pg_rows(pending[:FLUSH_ROWS], 1 - n)
                cur.execute(_PG_FLUSH.format(rows=rows), [n, *params])
                first = cur.fetchone()[0] if n == 1 else min(r[0] for r in cur.fetchall())
                for k in range(FLUSH_ROWS, n, FLUSH_ROWS):
                    rows, params = _pg_rows(pending[k:k + FLUSH_ROWS], first + k)
                    cur.execute(_PG_INSERT.format(rows=rows), params)
            else:
                cur.execute(_SQLITE_ADVANCE_HEAD, (n,))
                first = cur.fetchone()[0] - n + 1
                cur.executemany(_SQLITE_INSERT, [
                    (first + i, se.stream_id, se.stream_version, se.type, se.schema_version,
                     payload, md) for i, (se, payload, md) in enumerate(pending)])
        except self.store.engine.dialect.dbapi.Error as exc:
            if isinstance(exc, self.store.engine.dialect.dbapi.IntegrityError):
                # (stream_id, stream_version) taken: the whole unit rolls back
                raise ConcurrencyConflict({se.stream_id for se, _, _ in pending}) from None
            raise _wrapped(self.conn, cur, exc) from exc
        finally:
            cur.close()
        self.appended.extend(
            stored_event(first + i, se.stream_id, se.stream_version, se.type, se.schema_version,
                         se.payload, se.metadata) for i, (se, _, _) in enumerate(pending))

    # -- tracking ------------------------------------------------------------------------

    def tracked(self, upstream: str, lock: bool = False) -> tuple[int, str | None]:
        """(position, log id) of ``upstream`` applied so far; ``lock`` holds the row."""
        q = select(tracking_table.c.position, tracking_table.c.log_id).where(
            tracking_table.c.upstream == upstream)
        if lock and self.store.dialect == "postgresql":
            q = q.with_for_update()
        row = self.conn.execute(q).first()
        if row is None:
            # first contact with this upstream: create the row, then lock it
            try:
                with self.conn.begin_nested():
                    self.conn.execute(tracking_table.insert().values(upstream=upstream, position=0))
            except IntegrityError:
                pass
            row = self.conn.execute(q).one()
        return row.position, row.log_id

    def track(self, upstream: str, position: int, previous: int, log_id: str | None = None):
        """Record that ``upstream`` is applied up to ``position``, in this transaction."""
        res = self.conn.execute(
            update(tracking_table)
            .where(tracking_table.c.upstream == upstream, tracking_table.c.position == previous)
            .values(position=position, log_id=log_id))
        if res.rowcount != 1:
            raise ConcurrencyConflict([f"tracking:{upstream}"])

    def put_blob(self, sha256: str, content_type: str, data: bytes):
        """Store an upload once; the same bytes uploaded twice at once is not an error."""
        insert = pg_insert if self.store.dialect == "postgresql" else sqlite_insert
        self.conn.execute(insert(blobs_table).values(
            sha256=sha256, content_type=content_type, size=len(data), data=data,
        ).on_conflict_do_nothing(index_elements=["sha256"]))


def open_store(url: str, registry: EventRegistry, *, clock=None, projections=(),
               create_database: bool = True) -> EventStore:
    """Engine, store and migrations in one step (services, CLI, tests)."""
    if create_database:
        ensure_database(url)
    store = EventStore(make_engine(url), registry, clock=clock, projections=projections)
    store.migrate()
    return store
