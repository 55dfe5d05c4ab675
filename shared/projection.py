"""Projections: read models that are pure folds of a service's own log.

A projection's ``handle(event)`` is pure: it maps one stored event to row changes
(``Upsert`` / ``Update`` / ``Delete``) and touches nothing. This module applies those changes, in the
transaction that appended the events (so a read model is never behind its own log), and
replays the whole log into an emptied read model for ``rebuild``.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import MetaData, Table, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared.events import StoredEvent
from shared.migrations import Migration


@dataclass(frozen=True, slots=True)
class Upsert:
    """Create the row with ``key``, or set ``values`` on it if it exists. ``values`` must
    name every required column (PostgreSQL checks them before it sees the conflict)."""

    table: str
    key: dict
    values: dict


@dataclass(frozen=True, slots=True)
class Update:
    """Set ``values`` on the existing row with ``key``; no row, no effect."""

    table: str
    key: dict
    values: dict


@dataclass(frozen=True, slots=True)
class Delete:
    table: str
    key: dict


Change = Upsert | Update | Delete


class Projection:
    """Subclass: set ``name``, ``metadata`` (its tables), ``migrations``, write ``handle``."""

    name: str = ""
    metadata: MetaData
    migrations: Sequence[Migration] = ()

    def handle(self, event: StoredEvent) -> Iterable[Change]:
        raise NotImplementedError

    @property
    def tables(self) -> dict[str, Table]:
        return dict(self.metadata.tables)

    # -- applying (adapter side) ---------------------------------------------------------

    def apply(self, conn, events: Sequence[StoredEvent]):
        """In the appending transaction (the events' log positions are given at commit:
        ``handle`` must not depend on them)."""
        changes = []
        for ev in events:
            changes.extend(self.handle(ev))
        _write(conn, self.tables, _coalesce(changes))

    def rebuild(self, store, batch: int = 20000,
                progress: Callable[[int, int], None] | None = None) -> int:
        """Drop the read model and replay the log into it; returns events replayed.

        Runs while the service runs: it holds the log's head lock, so appends wait for it
        (nothing is missed or double-applied) while readers keep seeing the old model until
        the new one commits.
        """
        from shared.eventstore import log_head

        with store.write_engine.begin() as conn:
            head = conn.execute(update(log_head).where(log_head.c.id == 1)
                                .values(position=log_head.c.position)
                                .returning(log_head.c.position)).scalar_one()
            for table in reversed(self.metadata.sorted_tables):
                conn.execute(delete(table))
            done, position = 0, 0
            while position < head:
                evs = store.events_after(position, batch, conn=conn)
                if not evs:
                    break
                changes = []
                for ev in evs:
                    changes.extend(self.handle(ev))
                _write(conn, self.tables, _coalesce(changes))
                position = evs[-1].position
                done += len(evs)
                if progress:
                    progress(position, head)
            _set_position(conn, self.name, head)
        return done


def _coalesce(changes: Iterable[Change]) -> dict[tuple, list]:
    """Fold many changes into few per row with the same effect, in order (fewer round trips).

    Per row: a delete makes what came before moot; an update merges into the upsert or
    update before it; an upsert merges into an upsert. An upsert after an update stays a
    separate step (whether the update hit a row matters), applied in a later round.
    """
    rows: dict[tuple, list] = {}  # (table, key) -> [[kind, key, values], ...]
    for ch in changes:
        k = (ch.table, tuple(sorted(ch.key.items())))
        steps = rows.setdefault(k, [])
        kind = type(ch).__name__
        if kind == "Delete":
            steps[:] = [[kind, ch.key, {}]]
        elif steps and (steps[-1][0] == kind or (kind == "Update" and steps[-1][0] == "Upsert")):
            steps[-1][2].update(ch.values)
        elif kind == "Update" and steps and steps[-1][0] == "Delete":
            continue  # nothing to update after a delete
        else:
            steps.append([kind, ch.key, dict(ch.values)])
    return rows


def _write(conn, tables: dict[str, Table], rows: dict[tuple, list]):
    if not rows:
        return
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    for round_no in range(max(len(steps) for steps in rows.values())):
        groups: dict[tuple, list] = {}
        for (tname, _), steps in rows.items():
            if round_no < len(steps):
                kind, key, values = steps[round_no]
                groups.setdefault((tname, kind, tuple(sorted(key)), tuple(sorted(values))), []).append(
                    (key, values))
        for (tname, kind, keycols, valcols), batch in groups.items():
            t = tables[tname]
            where = [t.c[c] == bindparam(f"k_{c}") for c in keycols]
            if kind == "Delete":
                conn.execute(delete(t).where(*where), [{f"k_{c}": k[c] for c in keycols} for k, _ in batch])
            elif kind == "Update":
                if valcols:
                    conn.execute(update(t).where(*where).values({c: bindparam(f"v_{c}") for c in valcols}),
                                 [{**{f"k_{c}": k[c] for c in keycols}, **{f"v_{c}": v[c] for c in valcols}}
                                  for k, v in batch])
            else:
                stmt = insert(t)
                setcols = [c for c in valcols if c not in keycols]
                stmt = (stmt.on_conflict_do_update(index_elements=list(keycols),
                                                   set_={c: stmt.excluded[c] for c in setcols})
                        if setcols else stmt.on_conflict_do_nothing(index_elements=list(keycols)))
                if len(batch) > 1 and conn.dialect.name == "postgresql":
                    # RETURNING lets SQLAlchemy send many rows per statement (insertmanyvalues);
                    # without it an ON CONFLICT executemany goes a round trip per row.
                    # _coalesce left one step per row, so no row appears twice.
                    stmt = stmt.returning(*[t.c[c] for c in keycols])
                    conn.execute(stmt, [{**k, **v} for k, v in batch]).close()
                else:
                    conn.execute(stmt, [{**k, **v} for k, v in batch])


def _set_position(conn, name: str, position: int):
    from shared.eventstore import projection_state

    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(projection_state).values(name=name, position=position)
    conn.execute(stmt.on_conflict_do_update(index_elements=["name"],
                                            set_={"position": stmt.excluded.position}))


def snapshot(conn_or_engine, projection: Projection) -> dict[str, list[dict]]:
    """Every row of a read model, sorted: for comparing a live model with its rebuild."""
    out = {}

    def read(conn):
        for name, t in sorted(projection.tables.items()):
            rows = [dict(r._mapping) for r in conn.execute(select(t))]
            out[name] = sorted(rows, key=lambda r: repr(sorted(r.items())))

    if hasattr(conn_or_engine, "connect"):
        with conn_or_engine.connect() as conn:
            read(conn)
    else:
        read(conn_or_engine)
    return out
