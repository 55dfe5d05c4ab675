"""The unit of work: read streams, decide, append, track, commit once.

``Transaction`` lives for one database transaction (``EventStore.transaction``); the events
it appends go into the log at commit, numbered then.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from shared.clock import iso
from shared.events import NewEvent, StoredEvent, stored_event
from shared.eventstore.engine import driver_error, driver_executed, driver_rows
from shared.eventstore.statements import PG_STREAM_HEAD, STREAM_HEAD, TRACK, TRACKED, TRACKED_LOCKED
from shared.eventstore.tables import blobs_table, tracking_table

if TYPE_CHECKING:
    from shared.eventstore.store import EventStore


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


def _dumps(obj) -> str:
    return orjson.dumps(obj).decode()


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


@dataclass
class Transaction:
    """The unit of work. ``append`` validates and versions events and writes the read
    models at once; the events themselves go into the log at commit (``flush``): then the
    log's head row is locked, positions handed out, the events inserted and the
    transaction committed, so the lock that serializes every writer is held briefly and is
    always the last one taken (no deadlocks with read-model rows)."""

    store: "EventStore"
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

    def appended_to(self, stream_id: str) -> bool:
        """Has this transaction appended to the stream (no database read)?"""
        return stream_id in self._versions

    def stream_version(self, stream_id: str) -> int:
        if stream_id in self._versions:
            return self._versions[stream_id]
        if self.store.dialect == "postgresql":
            rows = driver_rows(self.conn, PG_STREAM_HEAD, (stream_id,))
            return rows[0][0] if rows else 0
        row = self.conn.execute(STREAM_HEAD, {"stream_id": stream_id}).first()
        return row[0] if row else 0

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
                sql, params = _PG_FLUSH.format(rows=rows), [n, *params]
                driver_executed(self.conn, cur, sql, params)
                cur.execute(sql, params)
                first = cur.fetchone()[0] if n == 1 else min(r[0] for r in cur.fetchall())
                for k in range(FLUSH_ROWS, n, FLUSH_ROWS):
                    rows, params = _pg_rows(pending[k:k + FLUSH_ROWS], first + k)
                    sql = _PG_INSERT.format(rows=rows)
                    driver_executed(self.conn, cur, sql, params)
                    cur.execute(sql, params)
            else:
                driver_executed(self.conn, cur, _SQLITE_ADVANCE_HEAD, (n,))
                cur.execute(_SQLITE_ADVANCE_HEAD, (n,))
                driver_executed(self.conn, cur, _SQLITE_INSERT, (), executemany=True)
                first = cur.fetchone()[0] - n + 1
                cur.executemany(_SQLITE_INSERT, [
                    (first + i, se.stream_id, se.stream_version, se.type, se.schema_version,
                     payload, md) for i, (se, payload, md) in enumerate(pending)])
        except self.store.engine.dialect.dbapi.Error as exc:
            if isinstance(exc, self.store.engine.dialect.dbapi.IntegrityError):
                # (stream_id, stream_version) taken: the whole unit rolls back
                raise ConcurrencyConflict({se.stream_id for se, _, _ in pending}) from None
            raise driver_error(self.conn, cur, exc) from exc
        finally:
            cur.close()
        self.appended.extend(
            stored_event(first + i, se.stream_id, se.stream_version, se.type, se.schema_version,
                         se.payload, se.metadata) for i, (se, _, _) in enumerate(pending))

    # -- tracking ------------------------------------------------------------------------

    def tracked(self, upstream: str, lock: bool = False) -> tuple[int, str | None]:
        """(position, log id) of ``upstream`` applied so far; ``lock`` holds the row."""
        q = TRACKED_LOCKED if lock and self.store.dialect == "postgresql" else TRACKED
        params = {"upstream": upstream}
        row = self.conn.execute(q, params).first()
        if row is None:
            # first contact with this upstream: create the row, then lock it
            try:
                with self.conn.begin_nested():
                    self.conn.execute(tracking_table.insert().values(upstream=upstream, position=0))
            except IntegrityError:
                pass
            row = self.conn.execute(q, params).one()
        return row.position, row.log_id

    def track(self, upstream: str, position: int, previous: int, log_id: str | None = None):
        """Record that ``upstream`` is applied up to ``position``, in this transaction."""
        res = self.conn.execute(TRACK, {"of": upstream, "previous": previous,
                                        "to": position, "to_log": log_id})
        if res.rowcount != 1:
            raise ConcurrencyConflict([f"tracking:{upstream}"])

    def put_blob(self, sha256: str, content_type: str, data: bytes):
        """Store an upload once; the same bytes uploaded twice at once is not an error."""
        insert = pg_insert if self.store.dialect == "postgresql" else sqlite_insert
        self.conn.execute(insert(blobs_table).values(
            sha256=sha256, content_type=content_type, size=len(data), data=data,
        ).on_conflict_do_nothing(index_elements=["sha256"]))


