"""Rebuilding a read model: the log replayed into empty tables (``rebuild_read_model``).

Runs while the service runs; nothing is missed or applied twice, and readers see
the old model until the new one commits.

- PostgreSQL (``ShadowTables``): the new model is built beside the old one, in
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
deletes (``rebuild_rows.Fold``).
"""

import hashlib
import time

from sqlalchemy import MetaData, delete, select, update
from sqlalchemy.exc import OperationalError

from shared.projection.changes import insert_for
from shared.projection.rebuild_rows import Fold


def rebuild_read_model(store, projection, batch: int, progress, window: int) -> int:
    """``projection``'s read model replaced by a replay of ``store``'s log; the log
    position it then stands at (the number of events replayed, from an unfiltered log of
    positions 1…)."""
    from shared.eventstore.threads import gc_paused

    # millions of objects that live on (rows held, events of a batch) and no cycles:
    # collections would scan them over and over (half the CPU of a rebuild)
    with gc_paused():
        if store.dialect == "postgresql":
            shadow = ShadowTables.plan(store, projection)
            if shadow is not None:
                return shadow.rebuild(store, projection, batch, progress, window)
        return _rebuild_in_place(store, projection, batch, progress, window)


def _rebuild_in_place(store, projection, batch, progress, window) -> int:
    from shared.eventstore.tables import log_head

    with store.write_engine.begin() as conn:
        head = conn.execute(update(log_head).where(log_head.c.id == 1)
                            .values(position=log_head.c.position)
                            .returning(log_head.c.position)).scalar_one()
        for table in reversed(projection.metadata.sorted_tables):
            conn.execute(delete(table))
        fold = Fold(conn, projection.tables, _order(projection.metadata), window)
        replay_into(store, projection, conn, fold, 0, head, batch, progress)
        _set_position(conn, projection.name, head)
    return head

def replay_into(store, projection, conn, fold: Fold, after: int, head: int, batch: int,
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
                                types=projection.event_types):
            fold.apply(evs, projection.handle)
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


class ShadowTables:
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
    def plan(cls, store, projection) -> "ShadowTables | None":
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
            fold = Fold(conn, shadow_tables, order, window)
            replay_into(store, projection, conn, fold, 0, start, batch, progress)
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
            replay_into(store, projection, conn, fold, start, head, batch, progress,
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



def _set_position(conn, name: str, position: int):
    from shared.eventstore.tables import projection_state

    insert = insert_for(conn.dialect)
    stmt = insert(projection_state).values(name=name, position=position)
    conn.execute(stmt.on_conflict_do_update(index_elements=["name"],
                                            set_={"position": stmt.excluded.position}))
