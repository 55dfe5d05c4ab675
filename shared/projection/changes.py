"""Row changes and how an append writes them.

A projection's ``handle(event)`` maps one stored event to row changes (``Upsert`` /
``Update`` / ``Delete``). Here they are coalesced per row and written in the transaction
that appended the events, so a read model is never behind its own log.
"""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import Table, bindparam, delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared.events import StoredEvent
from shared.eventstore.engine import driver_error
from shared.projection.statements import RowStatements


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


class Steps(list):
    """One row's changes, coalesced: ``[[kind, key, values], ...]``, one statement each, in
    order. A delete makes what came before moot; an update merges into the upsert or update
    before it; an upsert merges into an upsert. An upsert after an update stays a separate
    step (whether the update hit a row matters), applied in a later round."""

    __slots__ = ()

    def add(self, kind, key, values):
        if kind is Delete:
            self[:] = [[Delete, key, {}]]
        elif self and (self[-1][0] is kind or (kind is Update and self[-1][0] is Upsert)):
            self[-1][2].update(values)
        elif kind is Update and self and self[-1][0] is Delete:
            pass  # nothing to update after a delete
        else:
            self.append([kind, key, dict(values)])


def apply_changes(conn, projection, events: Sequence[StoredEvent]):
    """``projection``'s changes for ``events``, in the appending transaction (the events' log
    positions are given at commit: ``handle`` must not depend on them). Written every
    ``APPLY_CHANGES`` changes: in order, so to the same effect, but a transaction of tens of
    thousands of events (a publication of scores) does not hold all their rows and
    statements at once."""
    changes, types = [], projection.event_types
    statements = projection.statements(conn.dialect)
    for ev in events:
        if types is None or ev.type in types:
            changes.extend(projection.handle(ev))
            if len(changes) >= APPLY_CHANGES:
                write(conn, statements, coalesce(changes))
                changes = []
    write(conn, statements, coalesce(changes))


def coalesce(changes: Iterable[Change]) -> dict[tuple, Steps]:
    """Fold many changes into few per row with the same effect, in order (fewer round
    trips): ``{(table, sorted key items): Steps}``."""
    rows: dict[tuple, Steps] = {}
    for ch in changes:
        k = (ch.table, tuple(sorted(ch.key.items())))
        steps = rows.get(k)
        if steps is None:
            steps = rows[k] = Steps()
        kind = ch.__class__
        steps.add(kind, ch.key, None if kind is Delete else ch.values)
    return rows


def rounds(rows: Iterable[tuple[str, Steps]]) -> Iterator[tuple[str, str, tuple, tuple, list]]:
    """Rows' steps as statements: a row's n-th step in round n, each round one statement per
    table, kind and columns: ``(table, kind name, key columns, value columns, [row dicts])``
    (value columns without the key's; an update that sets nothing is left out)."""
    rows = list(rows)
    for round_no in range(max((len(s) for _, s in rows), default=0)):
        groups: dict[tuple, list] = {}
        for table, s in rows:
            if round_no < len(s):
                kind, key, values = s[round_no]
                keycols = tuple(sorted(key))
                valcols = tuple(sorted(c for c in values if c not in key))
                groups.setdefault((table, kind, keycols, valcols), []).append({**values, **key})
        for (table, kind, keycols, valcols), dicts in groups.items():
            if kind is not Update or valcols:
                yield table, kind.__name__, keycols, valcols, dicts


def write(conn, statements: RowStatements, rows: dict[tuple, Steps]):
    """Coalesced ``rows`` on ``conn``, in the order of their steps (``rounds``)."""
    if not rows:
        return
    cursor = None
    try:
        for table, kind, keycols, valcols, dicts in rounds((t, s) for (t, _), s in rows.items()):
            if not statements.plain(table):
                write_with_sqlalchemy(conn, statements.tables[table], kind, keycols, valcols, dicts)
                continue
            if cursor is None:
                cursor = conn.connection.dbapi_connection.cursor()
            statements.run(cursor, kind, table, keycols, valcols, dicts, conn=conn)
    except conn.dialect.dbapi.Error as exc:
        raise driver_error(conn, cursor, exc) from exc
    finally:
        if cursor is not None:
            cursor.close()


def write_with_sqlalchemy(conn, t: Table, kind: str, keycols: tuple, valcols: tuple,
                          dicts: list[dict]):
    """``RowStatements.run`` through SQLAlchemy, for a table with Python-side column defaults
    (SQLAlchemy fills them in; none of the services' tables has any)."""
    if kind == "insert":
        conn.execute(insert_for(conn.dialect)(t), dicts)
        return
    where = [t.c[c] == bindparam(f"k_{c}") for c in keycols]
    if kind == "Delete":
        conn.execute(delete(t).where(*where), [{f"k_{c}": d[c] for c in keycols} for d in dicts])
    elif kind == "Update":
        # an update's parameters may not be named as its table's columns
        conn.execute(update(t).where(*where).values({c: bindparam(f"v_{c}") for c in valcols}),
                     [{**{f"k_{c}": d[c] for c in keycols}, **{f"v_{c}": d[c] for c in valcols}}
                      for d in dicts])
    else:
        stmt = insert_for(conn.dialect)(t)
        stmt = (stmt.on_conflict_do_update(index_elements=list(keycols),
                                           set_={c: stmt.excluded[c] for c in valcols})
                if valcols else stmt.on_conflict_do_nothing(index_elements=list(keycols)))
        conn.execute(stmt, dicts)


def insert_for(dialect):
    return pg_insert if dialect.name == "postgresql" else sqlite_insert
