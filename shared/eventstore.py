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
    bindparam,
    create_engine,
    event,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import NullPool, QueuePool

from shared.clock import SystemClock, iso
from shared.contracts import EventRegistry
from shared.errors import Conflict
from shared.events import NewEvent, StoredEvent
from shared.migrations import Migration, create_tables, migrate

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


def _seed_rows(conn):
    conn.execute(log_head.insert().values(id=1, position=0))
    conn.execute(relay_table.insert().values(id=1, position=0))


def _log_identity(conn):
    log_identity.create(conn, checkfirst=True)
    conn.execute(log_identity.insert().values(id=1, log_id=uuid.uuid4().hex))
    if "log_id" not in {c["name"] for c in inspect(conn).get_columns("tracking")}:
        conn.execute(text("ALTER TABLE tracking ADD COLUMN log_id VARCHAR(32)"))


CORE_MIGRATIONS = [
    Migration("core.0001_event_log", create_tables(events_table, log_head, tracking_table,
                                                   relay_table, projection_state, blobs_table)),
    Migration("core.0002_seed_counters", _seed_rows),
    Migration("core.0003_log_identity", _log_identity),
]


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

def make_engine(url: str, **kwargs):
    """An engine for the event log. SQLite gets WAL and ``BEGIN IMMEDIATE`` for writes."""
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
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("kaowu_write")
                                 else "BEGIN")
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


def _dumps(obj) -> str:
    return orjson.dumps(obj).decode()


# -- the store ---------------------------------------------------------------------------

class EventStore:
    """One service's log. Thread- and greenthread-safe; cheap to share."""

    def __init__(self, engine, registry: EventRegistry, *, clock=None, projections=(),
                 migrations: Sequence[Migration] = ()):
        self.engine = engine
        self.write_engine = engine.execution_options(kaowu_write=True)
        self.dialect = engine.dialect.name
        self.registry = registry
        self.clock = clock or SystemClock()
        self.projections = list(projections)
        self.migrations = list(CORE_MIGRATIONS) + list(migrations)
        for p in self.projections:
            self.migrations += [m for m in p.migrations if m not in self.migrations]
        self._listeners: list[Callable[[list[StoredEvent]], None]] = []
        self._log_id: str | None = None
        self._lock = threading.Lock()

    def migrate(self):
        return migrate(self.engine, self.migrations)

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

    def _decode_all(self, result) -> list[StoredEvent]:
        upcast, loads = self.registry.upcast, orjson.loads
        out = []
        for position, stream_id, stream_version, type_, schema_version, payload, metadata in \
                result.tuples().all():
            schema_version, payload = upcast(type_, schema_version, loads(payload))
            out.append(StoredEvent(position, stream_id, stream_version, type_, schema_version,
                                   payload, loads(metadata)))
        return out

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
        """Every event after ``position``, read in batches (replay)."""
        while True:
            got = self.events_after(position, batch, conn=conn)
            yield from got
            if len(got) < batch:
                return
            position = got[-1].position

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


_ADVANCE_HEAD = (update(log_head).where(log_head.c.id == 1)
                 .values(position=log_head.c.position + bindparam("n"))
                 .returning(log_head.c.position))
_INSERT_EVENTS = events_table.insert()


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
            se = StoredEvent(0, ev.stream_id, next_version[ev.stream_id], ev.type,
                             registry.get(ev.type).version, ev.payload, md)
            provisional.append(se)
            self._pending.append((se, _dumps(ev.payload), _dumps(md)))
        self._versions.update(next_version)
        for projection in self.store.projections:
            projection.apply(self.conn, provisional)
        return provisional

    def flush(self):
        """Into the log: head lock, positions, one insert. Called by the store at commit."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        n = len(pending)
        last = self.conn.execute(_ADVANCE_HEAD, {"n": n}).scalar_one()
        first = last - n + 1
        stored, rows = [], []
        for i, (se, payload, md) in enumerate(pending):
            stored.append(StoredEvent(first + i, se.stream_id, se.stream_version, se.type,
                                      se.schema_version, se.payload, se.metadata))
            rows.append({"position": first + i, "stream_id": se.stream_id,
                         "stream_version": se.stream_version, "type": se.type,
                         "schema_version": se.schema_version, "payload": payload,
                         "metadata": md})
        try:
            self.conn.execute(_INSERT_EVENTS, rows)
        except IntegrityError:  # (stream_id, stream_version) taken: the whole unit rolls back
            raise ConcurrencyConflict({se.stream_id for se, _, _ in pending}) from None
        self.appended.extend(stored)

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


def open_store(url: str, registry: EventRegistry, *, clock=None, projections=(), migrations=(),
               create_database: bool = True) -> EventStore:
    """Engine, store and migrations in one step (services, CLI, tests)."""
    if create_database:
        ensure_database(url)
    store = EventStore(make_engine(url), registry, clock=clock, projections=projections,
                       migrations=migrations)
    store.migrate()
    return store
