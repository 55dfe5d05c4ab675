"""Row changes and how an append writes them.

A projection's ``handle(event)`` maps one stored event to row changes (``Upsert`` /
``Update`` / ``Delete``). Here they are coalesced per row and written in the transaction
that appended the events, so a read model is never behind its own log.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Table, bindparam, delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared.events import StoredEvent


# Not frozen: handle() makes one per row change, on every append and millions in a rebuild,
# and a frozen dataclass's __init__ costs several times more. Nothing changes them after.
@dataclass(slots=True)
class Upsert:
    """Create the row with ``key``, or set ``values`` on it if it exists. ``values`` must
    name every required column (PostgreSQL checks them before it sees the conflict)."""

    table: str
    key: dict
    values: dict


@dataclass(slots=True)
class Update:
    """Set ``values`` on the existing row with ``key``; no row, no effect."""

    table: str
    key: dict
    values: dict


@dataclass(slots=True)
class Delete:
    table: str
    key: dict


Change = Upsert | Update | Delete

# row changes an append writes at a time (each batch coalesced, then written in order)
APPLY_CHANGES = 1000


def apply_changes(conn, projection, events: Sequence[StoredEvent]):
    """``projection``'s changes for ``events``, in the appending transaction (the events' log
    positions are given at commit: ``handle`` must not depend on them). Written every
    ``APPLY_CHANGES`` changes: in order, so to the same effect, but a transaction of tens of
    thousands of events (a publication of scores) does not hold all their rows and
    statements at once."""
    changes, types, tables = [], projection.event_types, projection.tables
    for ev in events:
        if types is None or ev.type in types:
            changes.extend(projection.handle(ev))
            if len(changes) >= APPLY_CHANGES:
                write(conn, tables, coalesce(changes))
                changes = []
    write(conn, tables, coalesce(changes))


def coalesce(changes: Iterable[Change]) -> dict[tuple, list]:
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


def write(conn, tables: dict[str, Table], rows: dict[tuple, list]):
    if not rows:
        return
    insert = insert_for(conn.dialect)
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
                    # coalesce left one step per row, so no row appears twice.
                    stmt = stmt.returning(*[t.c[c] for c in keycols])
                    conn.execute(stmt, [{**k, **v} for k, v in batch]).close()
                else:
                    conn.execute(stmt, [{**k, **v} for k, v in batch])



def insert_for(dialect):
    return pg_insert if dialect.name == "postgresql" else sqlite_insert

