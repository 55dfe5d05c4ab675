"""Projections: read models that are pure folds of a service's own log.

A projection's ``handle(event)`` is pure: it maps one stored event to row changes
(``Upsert`` / ``Update`` / ``Delete``) and touches nothing. This module applies those changes, in the
transaction that appended the events (so a read model is never behind its own log), and
replays the whole log into an emptied read model for ``rebuild``.
"""

import hashlib
import itertools
import operator
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    TypeDecorator,
    bindparam,
    delete,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError

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


class Projection:
    """Subclass: set ``name``, ``metadata`` (its tables), ``history``, write ``handle``.

    ``history`` names the Alembic history of the tables (``shared/alembic/<history>/``,
    see ``shared.migrations``); every service's projection has one. A throwaway projection
    of a test or a benchmark leaves it None and gets its tables created as declared.

    ``event_types``, if set, names every event type ``handle`` looks at: the others are
    not handed to it, live or in a rebuild, and a rebuild does not read them from the log
    at all (a third of the account log is claims a read model never needs).
    """

    name: str = ""
    metadata: MetaData
    history: str | None = None
    event_types: frozenset[str] | None = None

    def handle(self, event: StoredEvent) -> Iterable[Change]:
        raise NotImplementedError

    @property
    def tables(self) -> dict[str, Table]:
        return dict(self.metadata.tables)

    # -- applying (adapter side) ---------------------------------------------------------

    def apply(self, conn, events: Sequence[StoredEvent]):
        """In the appending transaction (the events' log positions are given at commit:
        ``handle`` must not depend on them). Written every ``APPLY_CHANGES`` changes: in
        order, so to the same effect, but a transaction of tens of thousands of events
        (a publication of scores) does not hold all their rows and statements at once."""
        changes, types = [], self.event_types
        for ev in events:
            if types is None or ev.type in types:
                changes.extend(self.handle(ev))
                if len(changes) >= APPLY_CHANGES:
                    _write(conn, self.tables, _coalesce(changes))
                    changes = []
        _write(conn, self.tables, _coalesce(changes))

    def rebuild(self, store, batch: int = 20000,
                progress: Callable[[int, int], None] | None = None,
                window: int = 100_000) -> int:
        """Replace the read model by a replay of the log; returns the log position it then
        stands at (the number of events replayed, from an unfiltered log of positions 1…).

        Runs while the service runs; nothing is missed or applied twice, and readers see
        the old model until the new one commits.

        - PostgreSQL (``_ShadowTables``): the new model is built beside the old one, in
          tables of its own, without holding anything the service needs, up to the head
          the log had when it started; then, in the same transaction, it takes the read
          model's tables (ACCESS EXCLUSIVE: readers and writers of them wait from here) and
          the log's head lock (appends wait), applies the events appended meanwhile, and
          puts the new tables in the old ones' place. The service waits only for that
          tail. Where the tables cannot be swapped safely (foreign keys, views, triggers,
          sequences, grants), it rebuilds in place as SQLite does.
        - SQLite, and the fallback: the head lock first (appends wait for the whole
          rebuild), the tables emptied and refilled.

        Fast because the tables start empty: the log is read ``batch`` events at a time with
        the driver's own cursor (payloads are not validated again: they were on append; a
        projection's ``event_types`` leaves the rest unread), the changes are folded in
        memory into whole rows (a row changed by many events is written once), and up to
        ``window`` rows are held before the oldest are written, many per statement. On
        PostgreSQL two database threads (``DatabaseWorker``) work beside the fold: one
        fetches the next batch on a connection of its own, the other writes. A row changed again
        after it was written gets its later changes as batched upserts, updates and
        deletes (``_Fold``).
        """
        from shared.eventstore.threads import gc_paused

        # millions of objects that live on (rows held, events of a batch) and no cycles:
        # collections would scan them over and over (half the CPU of a rebuild)
        with gc_paused():
            if store.dialect == "postgresql":
                shadow = _ShadowTables.plan(store, self)
                if shadow is not None:
                    return shadow.rebuild(store, self, batch, progress, window)
            return self._rebuild_in_place(store, batch, progress, window)

    def _rebuild_in_place(self, store, batch, progress, window) -> int:
        from shared.eventstore.tables import log_head

        with store.write_engine.begin() as conn:
            head = conn.execute(update(log_head).where(log_head.c.id == 1)
                                .values(position=log_head.c.position)
                                .returning(log_head.c.position)).scalar_one()
            for table in reversed(self.metadata.sorted_tables):
                conn.execute(delete(table))
            fold = _Fold(conn, self.tables, _order(self.metadata), window)
            self._replay_into(store, conn, fold, 0, head, batch, progress)
            _set_position(conn, self.name, head)
        return head

    def _replay_into(self, store, conn, fold: "_Fold", after: int, head: int, batch: int,
                     progress=None, background: bool = True):
        """Events after ``after`` up to ``head`` into ``fold``, written by the time it returns."""
        from shared.eventstore.threads import DatabaseWorker

        background = background and conn.dialect.name == "postgresql"
        fold.writer.use(DatabaseWorker() if background else None)
        # PostgreSQL: the log is read on a connection and a thread of its own, beside the
        # writes (every event up to ``head`` is committed and never changes), so fetching
        # the next batch does not wait behind the last batch's inserts
        read_conn = store.engine.connect() if background else conn
        reader = DatabaseWorker() if background else None
        try:
            for evs in store.replay(read_conn, after, head, batch, worker=reader,
                                    types=self.event_types):
                fold.apply(evs, self.handle)
                fold.spill()
                if progress:
                    progress(evs[-1].position, head)
            fold.flush()
            fold.writer.close()
        except BaseException as exc:
            # the writer's own failure (a constraint, a lost connection) is the news, not
            # what followed from it here
            failed = fold.writer.abort()
            if failed is not None and failed is not exc:
                raise failed from exc
            raise
        finally:
            if reader is not None:
                reader.abort()
                read_conn.close()
        if progress:
            progress(head, head)


def _order(metadata: MetaData) -> dict[str, int]:
    return {t.key: i for i, t in enumerate(metadata.sorted_tables)}


class _ShadowTables:
    """A PostgreSQL rebuild into new tables, swapped in for the old ones at the end.

    Each table ``t`` gets a twin (``CREATE TABLE … (LIKE t INCLUDING ALL EXCLUDING
    INDEXES)``, named ``kaowu_rb_<hash>``) with its primary key and unique constraints
    (upserts need them); its other indexes are built after the load (a sort, cheaper
    than keeping them up row by row) and the twin is analyzed. At the swap the old table is
    dropped and the twin, its indexes and constraints take the old names. All of it is one
    transaction: a failure leaves the old model and no twin behind.
    """

    LOCK_TIMEOUT_S = 2  # per try to take the read model's tables; tried LOCK_TRIES times
    LOCK_TRIES = 15

    def __init__(self, tables: list[dict]):
        self.tables = tables  # per table: name, qualified, shadow, shadow_qualified, oid

    @classmethod
    def plan(cls, store, projection) -> "_ShadowTables | None":
        """The tables to twin, or None where swapping them could lose something."""
        q = store.engine.dialect.identifier_preparer
        tables = []
        with store.engine.connect() as c:
            for t in projection.metadata.sorted_tables:
                qualified = q.format_table(t)
                row = c.exec_driver_sql(
                    "SELECT c.oid, c.relkind, c.relacl IS NULL AND pg_has_role(c.relowner, 'USAGE') "
                    "FROM pg_class c WHERE c.oid = to_regclass(%(t)s)", {"t": qualified}).first()
                if row is None or row[1] != "r" or not row[2]:
                    return None  # missing, partitioned or a view, explicit grants, not ours
                shadow = "kaowu_rb_" + hashlib.sha256(qualified.encode()).hexdigest()[:16]
                tables.append({"name": t.name, "qualified": qualified, "oid": row[0],
                               "shadow": shadow,
                               "shadow_qualified": (f"{q.quote_schema(t.schema)}.{q.quote(shadow)}"
                                                    if t.schema else q.quote(shadow))})
            oids = [t["oid"] for t in tables]
            blocked = c.exec_driver_sql(
                # foreign keys, views or rules, triggers, sequences or identity columns, children
                "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE contype = 'f' "
                "  AND (conrelid = ANY(%(o)s) OR confrelid = ANY(%(o)s))) "
                "OR EXISTS (SELECT 1 FROM pg_depend d JOIN pg_rewrite r ON d.objid = r.oid "
                "  WHERE d.refobjid = ANY(%(o)s) AND r.ev_class <> ALL(%(o)s)) "
                "OR EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = ANY(%(o)s) AND NOT tgisinternal) "
                "OR EXISTS (SELECT 1 FROM pg_attribute a LEFT JOIN pg_attrdef ad "
                "  ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum "
                "  WHERE a.attrelid = ANY(%(o)s) AND a.attnum > 0 AND NOT a.attisdropped "
                "  AND (a.attidentity <> '' OR pg_get_expr(ad.adbin, ad.adrelid) LIKE '%%nextval%%')) "
                "OR EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = ANY(%(o)s) "
                "  OR inhparent = ANY(%(o)s))", {"o": oids}).scalar()
        return None if blocked else cls(tables)

    def _indexes(self, conn, t: dict) -> list[dict]:
        """The old table's indexes: name, definition, the constraint that owns it (and that
        constraint's definition), unique; names quoted as PostgreSQL prints them."""
        rows = conn.exec_driver_sql(
            "SELECT i.relname, quote_ident(i.relname), pg_get_indexdef(x.indexrelid), "
            "con.conname, pg_get_constraintdef(con.oid), x.indisunique, "
            "quote_ident(n.nspname), quote_ident(c.relname) "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid AND con.conrelid = x.indrelid "
            "WHERE x.indrelid = %(o)s ORDER BY NOT x.indisprimary, i.relname", {"o": t["oid"]}).all()
        return [{"name": r[0], "quoted": r[1], "indexdef": r[2], "constraint": r[3], "condef": r[4],
                 "unique": r[5], "schema": r[6], "on": f" ON {r[6]}.{r[7]} ",
                 "temp": "kaowu_rbi_" + hashlib.sha256(f"{t['qualified']}.{r[0]}".encode())
                 .hexdigest()[:16]} for r in rows]

    def _create_index(self, conn, t: dict, ix: dict):
        q = conn.dialect.identifier_preparer.quote
        if ix["constraint"]:  # primary key, unique, exclusion: the constraint makes the index
            conn.exec_driver_sql(f"ALTER TABLE {t['shadow_qualified']} ADD CONSTRAINT "
                                 f"{q(ix['temp'])} {ix['condef']}".replace("%", "%%"))
            return
        head = f"INDEX {ix['quoted']}{ix['on']}"
        if head not in ix["indexdef"]:
            raise RuntimeError(f"cannot read the definition of index {ix['name']}: {ix['indexdef']}")
        conn.exec_driver_sql(ix["indexdef"].replace(
            head, f"INDEX {q(ix['temp'])} ON {ix['schema']}.{q(t['shadow'])} ", 1).replace("%", "%%"))

    def rebuild(self, store, projection, batch, progress, window) -> int:
        from shared.eventstore.tables import log_head

        shadow_tables = {}
        meta = MetaData()
        for t, spec in zip(projection.metadata.sorted_tables, self.tables, strict=True):
            shadow_tables[t.key] = t.to_metadata(meta, name=spec["shadow"])
        order = _order(projection.metadata)
        with store.write_engine.begin() as conn:
            # one rebuild of a projection at a time (the next waits, then rebuilds again)
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext(%(k)s))",
                                 {"k": f"kaowu-rebuild:{projection.name}"})
            indexes = {t["name"]: self._indexes(conn, t) for t in self.tables}
            for t in self.tables:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {t['shadow_qualified']}")
                conn.exec_driver_sql(f"CREATE TABLE {t['shadow_qualified']} "
                                     f"(LIKE {t['qualified']} INCLUDING ALL EXCLUDING INDEXES)")
                for ix in indexes[t["name"]]:
                    if ix["unique"]:  # upserts need them while loading
                        self._create_index(conn, t, ix)
            # the head as committed: every event up to it is in the log (no lock taken)
            start = conn.execute(select(log_head.c.position).where(log_head.c.id == 1)).scalar_one()
            fold = _Fold(conn, shadow_tables, order, window)
            projection._replay_into(store, conn, fold, 0, start, batch, progress)
            for t in self.tables:
                for ix in indexes[t["name"]]:
                    if not ix["unique"]:
                        self._create_index(conn, t, ix)
                conn.exec_driver_sql(f"ANALYZE {t['shadow_qualified']}")
            # the swap: the read model's tables, then the head (an append that has written
            # the read model and waits for the head would otherwise wait for us and we for it)
            self._lock_tables(conn)
            head = conn.execute(update(log_head).where(log_head.c.id == 1)
                                .values(position=log_head.c.position)
                                .returning(log_head.c.position)).scalar_one()
            projection._replay_into(store, conn, fold, start, head, batch, progress,
                                    background=False)
            q = conn.dialect.identifier_preparer.quote
            for t in self.tables:
                conn.exec_driver_sql(f"DROP TABLE {t['qualified']}")
                conn.exec_driver_sql(f"ALTER TABLE {t['shadow_qualified']} RENAME TO {q(t['name'])}")
                for ix in indexes[t["name"]]:  # an index's constraint is renamed with it
                    conn.exec_driver_sql(f"ALTER INDEX {ix['schema']}.{q(ix['temp'])} "
                                         f"RENAME TO {ix['quoted']}")
            _set_position(conn, projection.name, head)
        return head

    def _lock_tables(self, conn):
        """ACCESS EXCLUSIVE on the read model's tables, a few seconds per try: a long reader
        would otherwise hold up everyone queued behind this lock."""
        names = ", ".join(t["qualified"] for t in self.tables)
        for attempt in range(self.LOCK_TRIES):
            try:
                with conn.begin_nested():
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{self.LOCK_TIMEOUT_S}s'")
                    conn.exec_driver_sql(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
                conn.exec_driver_sql("SET LOCAL lock_timeout = 0")
                return
            except OperationalError:
                if attempt == self.LOCK_TRIES - 1:
                    raise
                time.sleep(0.1 * (attempt + 1))


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


class _Steps(list):
    """Changes to a row already written by this rebuild, coalesced as ``_coalesce`` does:
    ``[[kind, key, values], ...]``, one statement each, in order."""

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


class _Fold:
    """A rebuild's rows, folded in memory before they are written.

    The read model starts empty, so a row this rebuild has not written yet ("fresh") is
    known in full: the dict of its columns, or nothing (it does not exist). An Upsert
    creates it or sets values on it, an Update sets values on it if it exists, a Delete
    forgets it; it is written once, by a plain INSERT. Once written (the window was full:
    the oldest rows go first), a row's later changes are held as coalesced ``_Steps`` and
    written as upserts, updates and deletes, since what it holds is now in the database.
    Written rows are remembered by the hash of their id only (memory); a collision merely
    sends a fresh row down the ``_Steps`` path, which is right for any row.
    """

    def __init__(self, conn, tables: dict[str, Table], order: dict[str, int], window: int):
        self.writer = _BulkWriter(conn, tables, order)
        self._linked = any(t.foreign_keys for t in tables.values())
        self.window = max(1, window)
        # (table, key values) -> row; a table's rows are keyed by the columns of the first
        # key seen for it (a key of other columns: (table, None, its sorted items))
        self.rows: dict[tuple, dict | _Steps] = {}
        self.written: set[int] = set()
        self._keys: dict[str, tuple] = {}  # table -> (key getter, key column names)

    def _key_of(self, table: str, key: dict):
        spec = self._keys.get(table)
        if spec is None:
            spec = self._keys[table] = (operator.itemgetter(*key), key.keys() | set())
        return spec

    def apply(self, events: Iterable[StoredEvent], handle: Callable[[StoredEvent], Iterable[Change]]):
        """Fold what ``handle`` makes of each event (the loop of a rebuild, kept tight)."""
        rows, written, key_of = self.rows, self.written, self._key_of
        rows_get, keys_get = rows.get, self._keys.get
        upsert, delete_ = Upsert, Delete
        for ev in events:
            for ch in handle(ev):
                table, key = ch.table, ch.key
                spec = keys_get(table) or key_of(table, key)
                rid = ((table, spec[0](key)) if key.keys() == spec[1]
                       else (table, None, tuple(sorted(key.items()))))
                row = rows_get(rid)
                kind = ch.__class__
                if row is None:
                    if hash(rid) not in written:  # fresh and absent
                        if kind is upsert:
                            row = rows[rid] = dict(key)
                            row.update(ch.values)
                        continue
                    row = rows[rid] = _Steps()
                if row.__class__ is dict:
                    if kind is delete_:
                        del rows[rid]
                    else:
                        row.update(ch.values)
                else:
                    row.add(kind, key, None if kind is delete_ else ch.values)

    def add(self, ch: Change):
        self.apply((None,), lambda _: (ch,))

    def spill(self):
        """Write the oldest rows once more than ``window`` are held (all of them where tables
        refer to each other: a row is then never written before the row it refers to)."""
        if len(self.rows) > self.window:
            self._write(len(self.rows) if self._linked else len(self.rows) - self.window // 2)

    def flush(self):
        self._write(len(self.rows))

    def _write(self, n: int):
        rows = self.rows
        taken = list(itertools.islice(rows.items(), n))
        for rid, _ in taken:
            del rows[rid]
        inserts: dict[tuple, list[dict]] = {}
        steps: list[tuple[str, _Steps]] = []
        written = self.written
        for rid, row in taken:
            if row.__class__ is dict:
                inserts.setdefault((rid[0], tuple(row)), []).append(row)
                written.add(hash(rid))
            else:
                steps.append((rid[0], row))
        # rows written before first (they may give up a unique value a new row takes), then
        # new rows, parents before children; where tables refer to each other, new rows
        # first (a written row may come to refer to a new one)
        if not self._linked:
            self.writer.steps(steps)
        for (table, cols), batch in sorted(inserts.items(), key=lambda kv: self.writer.order[kv[0][0]]):
            self.writer.insert(table, cols, batch)
        if self._linked:
            self.writer.steps(steps)


class _BulkWriter:
    """Writes a rebuild's rows with the driver's own cursor, in the rebuild's transaction.

    PostgreSQL: thousands of rows per statement, handed over as one JSON document
    (``orjson``) and unpacked by the server (``json_to_recordset`` with each column's type):
    ``INSERT … SELECT`` for new rows, ``ON CONFLICT`` for upserts, ``UPDATE … FROM`` and
    ``DELETE … USING`` for the steps of rows written before. Python's share is one
    ``orjson.dumps`` per batch; the server's runs on the rebuild's ``DatabaseWorker`` thread
    while Python folds the next batch. Columns JSON cannot carry exactly (``Numeric``,
    binary, arrays, …) take ``execute_values`` with each type's bind processor instead.
    SQLite: ``executemany`` with the bind processors. Tables with Python-side column
    defaults go through SQLAlchemy (it fills those in), in the calling thread.
    """

    CHUNK = 10_000  # rows per statement on PostgreSQL
    _JSON_SAFE = (String, Integer, Boolean, JSON, Float, Date, DateTime)

    def __init__(self, conn, tables: dict[str, Table], order: dict[str, int]):
        self.conn = conn
        self.dialect = conn.dialect
        self.pg = conn.dialect.name == "postgresql"
        self.tables = tables  # as the projection names them -> the tables written
        self.order = order
        self._cursor = None
        self._sql: dict[tuple, str] = {}
        self._procs: dict[str, dict] = {}
        self._bg = None
        self._q = conn.dialect.identifier_preparer

    def use(self, worker):
        """Hand the statements to ``worker``'s thread from now on (None: run them here)."""
        self._bg = worker

    @property
    def cursor(self):
        if self._cursor is None:
            self._cursor = self.conn.connection.dbapi_connection.cursor()
        return self._cursor

    def _do(self, fn):
        """Run ``fn`` now, or on the worker thread after what was handed to it before."""
        if self._bg is None:
            fn()
        else:
            self._bg.submit(fn)

    def close(self):
        """Wait until everything is written; raises what the worker thread raised."""
        if self._bg is not None:
            bg, self._bg = self._bg, None
            bg.close()

    def abort(self) -> BaseException | None:
        """Stop the worker thread without waiting for its work; what it raised, if anything."""
        if self._bg is None:
            return None
        bg, self._bg = self._bg, None
        return bg.abort()

    def _sqlalchemy(self, fn):
        """Run ``fn`` (SQLAlchemy on the connection) in this thread, once the worker is idle."""
        if self._bg is not None:
            self._bg.wait()
        fn()

    # -- the statements ------------------------------------------------------------------

    def _plain(self, table: str) -> bool:
        """Whether raw statements do what SQLAlchemy would (no Python-side defaults)."""
        return not any(c.default is not None or c.onupdate is not None
                       for c in self.tables[table].columns)

    def _json_safe(self, table: str) -> bool:
        return self.pg and all(isinstance(c.type, self._JSON_SAFE)
                               and not isinstance(c.type, TypeDecorator)
                               for c in self.tables[table].columns)

    def write(self, kind, table: str, keycols: tuple, valcols: tuple, dicts: list[dict]):
        """One statement kind for many rows: "insert" (new rows), Upsert, Update or Delete.
        ``dicts`` hold ``keycols + valcols`` (Delete: the key only)."""
        if not self._plain(table):
            self._sqlalchemy(lambda: self._write_sqlalchemy(kind, table, keycols, valcols, dicts))
        elif self._json_safe(table):
            self._do(lambda: self._write_json(kind, table, keycols, valcols, dicts))
        else:
            self._do(lambda: self._write_params(kind, table, keycols, valcols, dicts))

    def _write_sqlalchemy(self, kind, table, keycols, valcols, dicts):
        if kind == "insert":
            self.conn.execute(insert_for(self.dialect)(self.tables[table]), dicts)
            return
        name = {Upsert: "Upsert", Update: "Update", Delete: "Delete"}[kind]
        steps = {(table, i): [[name, {c: d[c] for c in keycols}, {c: d[c] for c in valcols}]]
                 for i, d in enumerate(dicts)}
        _write(self.conn, self.tables, steps)

    def _type(self, table: str, col: str) -> str:
        return self.tables[table].c[col].type.compile(dialect=self.dialect)

    def _write_json(self, kind, table, keycols, valcols, dicts):
        sql = self._sql.get((kind, table, keycols, valcols, "json"))
        if sql is None:
            sql = self._sql[(kind, table, keycols, valcols, "json")] = self._json_sql(
                kind, table, keycols, valcols)
        option = orjson.OPT_NON_STR_KEYS
        for lo in range(0, len(dicts), self.CHUNK):
            chunk = dicts[lo:lo + self.CHUNK]
            try:
                doc = orjson.dumps(chunk, option=option).decode()
            except TypeError:  # a value JSON cannot carry as it is: the driver's way
                self._write_params(kind, table, keycols, valcols, chunk)
                continue
            self.cursor.execute(sql, (doc,))

    def _json_sql(self, kind, table, keycols, valcols) -> str:
        q, t = self._q.quote, self._q.format_table(self.tables[table])
        cols = keycols + valcols
        record = ", ".join(f"{q(c)} {self._type(table, c)}" for c in cols)
        source = f"json_to_recordset(%s::json) AS x({record})"

        def value(c):
            # what SQLAlchemy's JSON type stores for None: JSON null, not SQL NULL
            typ = self.tables[table].c[c].type
            if isinstance(typ, JSON) and not typ.none_as_null:
                return f"COALESCE(x.{q(c)}, 'null'::json)"
            return f"x.{q(c)}"

        match_keys = " AND ".join(f"t.{q(c)} = x.{q(c)}" for c in keycols)
        if kind == "insert" or kind is Upsert:
            sql = (f"INSERT INTO {t} ({', '.join(q(c) for c in cols)}) "
                   f"SELECT {', '.join(value(c) for c in cols)} FROM {source}")
            if kind is Upsert:
                sql += self._on_conflict(keycols, valcols)
            return sql
        if kind is Update:
            sets = ", ".join(f"{q(c)} = {value(c)}" for c in valcols)
            return f"UPDATE {t} AS t SET {sets} FROM {source} WHERE {match_keys}"
        return f"DELETE FROM {t} AS t USING {source} WHERE {match_keys}"

    def _on_conflict(self, keycols, valcols) -> str:
        """An upsert's tail: the value columns replace the row's, keyed by ``keycols``."""
        q = self._q.quote
        sets = [c for c in valcols if c not in keycols]
        return (f" ON CONFLICT ({', '.join(q(c) for c in keycols)}) "
                + ("DO UPDATE SET " + ", ".join(f"{q(c)} = excluded.{q(c)}" for c in sets)
                   if sets else "DO NOTHING"))

    def _params(self, table: str, cols: tuple, dicts) -> list:
        """Rows as tuples in ``cols`` order, through each column type's bind processor."""
        procs = self._procs.get(table)
        if procs is None:
            procs = self._procs[table] = {
                c.name: c.type.dialect_impl(self.dialect).bind_processor(self.dialect)
                for c in self.tables[table].columns}
        get = operator.itemgetter(*cols)
        rows = [get(d) for d in dicts] if len(cols) > 1 else [(get(d),) for d in dicts]
        conv = [(i, procs[c]) for i, c in enumerate(cols) if procs.get(c)]
        if not conv:
            return rows
        out = []
        for r in rows:
            r = list(r)
            for i, p in conv:
                r[i] = p(r[i])
            out.append(r)
        return out

    def _write_params(self, kind, table, keycols, valcols, dicts):
        sql = self._sql.get((kind, table, keycols, valcols, "params"))
        if sql is None:
            sql = self._sql[(kind, table, keycols, valcols, "params")] = self._params_sql(
                kind, table, keycols, valcols)
        cols = keycols + valcols if kind != Update or self.pg else valcols + keycols
        rows = self._params(table, cols, dicts)
        if self.pg:
            from psycopg2.extras import execute_values

            execute_values(self.cursor, sql, rows, page_size=1000)
        else:
            self.cursor.executemany(sql, rows)

    def _params_sql(self, kind, table, keycols, valcols) -> str:
        q, t = self._q.quote, self._q.format_table(self.tables[table])
        cols = keycols + valcols
        marks = "%s" if self.pg else "(" + ", ".join("?" * len(cols)) + ")"
        if kind == "insert" or kind is Upsert:
            sql = f"INSERT INTO {t} ({', '.join(q(c) for c in cols)}) VALUES {marks}"
            if kind is Upsert:
                sql += self._on_conflict(keycols, valcols)
            return sql
        if not self.pg:
            where = " AND ".join(f"{q(c)} = ?" for c in keycols)
            if kind is Update:
                return f"UPDATE {t} SET {', '.join(f'{q(c)} = ?' for c in valcols)} WHERE {where}"
            return f"DELETE FROM {t} WHERE {where}"
        # PostgreSQL: one statement for many rows, joined with the VALUES list (typed by casts)
        names = ", ".join(q(c) for c in cols)
        where = " AND ".join(f"t.{q(c)} = CAST(v.{q(c)} AS {self._type(table, c)})" for c in keycols)
        if kind is Update:
            sets = ", ".join(f"{q(c)} = CAST(v.{q(c)} AS {self._type(table, c)})" for c in valcols)
            return f"UPDATE {t} AS t SET {sets} FROM (VALUES %s) AS v({names}) WHERE {where}"
        return f"DELETE FROM {t} AS t USING (VALUES %s) AS v({names}) WHERE {where}"

    # -- what the fold hands over --------------------------------------------------------

    def insert(self, table: str, cols: tuple, dicts: list[dict]):
        """New rows: ``cols`` are the columns every dict has (key and values)."""
        self.write("insert", table, (), cols, dicts)

    def steps(self, rows: list[tuple[str, _Steps]]):
        """Rows written before: their steps in rounds (a row's n-th step in round n), each
        round one statement per table, kind and columns."""
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
                    self.write(kind, table, keycols, valcols, dicts)


def insert_for(dialect):
    return pg_insert if dialect.name == "postgresql" else sqlite_insert


def _set_position(conn, name: str, position: int):
    from shared.eventstore.tables import projection_state

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
