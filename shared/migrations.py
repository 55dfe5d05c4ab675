"""Schema migrations with Alembic: one history per part of a service's database.

Every service's database holds the event store's tables (the log, its head, tracking
records, the relay's position, projection positions, blobs: the ``core`` history) and the
service's read model (the history named after the service). The revisions live in
``shared/alembic/<history>/``: ``core`` once for all seven databases, one branch per
service beside it; a database is upgraded to the heads of ``core`` and of its service's
branch. Revisions are frozen: each writes its tables out column by column and never
imports today's table objects (``tests/integration/test_migrations.py`` checks that the
heads equal the models, and that a database upgraded revision by revision equals a fresh
one).

A revision that makes a read model's tables anew (a changed primary key) says ``rebuild =
True``: once it is applied, the service's projection is rebuilt from the log
(``EventStore.migrate``, so at start and by ``shared.migrate`` alike). The upgrade marks
the projection owed a rebuild in its own transaction (``projection_state`` at
:data:`REBUILD_OWED`); the rebuild's last transaction overwrites the mark with the
position it reached. A process that dies between the two leaves the mark, and the next
start (a service's, ``shared.migrate``'s) rebuilds before anything else
(:func:`rebuild_owed`): the read model is never left empty or stale.

Programmatic: no ``alembic.ini`` and no ``env.py``; :func:`upgrade` configures Alembic on
the service's own connection, in one transaction, under a PostgreSQL advisory lock (two
replicas starting together do not race; on SQLite the write transaction's lock does it).
A database already at its heads costs one query at start (the script directories are read
once per process).

A database made by the scheme before Alembic (a ``schema_migrations`` table of applied ids)
is adopted: stamped at the revisions those ids name, if its tables are what those revisions
make, else refused with :class:`SchemaRefused` and the differences.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from sqlalchemy import BigInteger, MetaData, inspect, select, text
from sqlalchemy import types as sqltypes

from shared.logging import get_logger

log = get_logger(__name__)

# Alembic is imported where it is used: a database at its heads needs none of it. Its
# INFO lines ("Running upgrade …", plugin set-up) would be JSON noise: callers report.
logging.getLogger("alembic").setLevel(logging.WARNING)

ROOT = Path(__file__).parent / "alembic"
CORE = "core"
VERSION_TABLE = "alembic_version"
LEGACY_TABLE = "schema_migrations"  # the scheme before Alembic: ids of applied steps
_ADVISORY_KEY = 0x4B414F5755  # "KAOWU", as before Alembic: old and new starters exclude each other
#: ``projection_state.position`` of a projection owed a rebuild: an upgrade made its tables
#: anew. The rebuild's last transaction writes the position it reached over it
#: (``Projection.rebuild``), so the mark goes exactly when the new read model commits.
REBUILD_OWED = -1


class SchemaRefused(RuntimeError):
    """The database's tables are not what its recorded migrations make: not touched."""


def histories() -> list[str]:
    """Every history there is (``core`` and one per service with a read model)."""
    return sorted(p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith("_"))


def config(names: Sequence[str]):
    """The Alembic configuration of a database holding the histories ``names``, built in
    code: for Alembic's own commands (``alembic.command.history(config(...))`` and so on)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations",
                        os.pathsep.join(str(ROOT / n) for n in names))
    return cfg


@functools.cache
def script(names: tuple[str, ...]):
    """The revisions of the histories ``names`` (read once per process: cheap starts)."""
    from alembic.script import ScriptDirectory
    unknown = [n for n in names if not (ROOT / n).is_dir()]
    if unknown:
        raise LookupError(f"no migration history {', '.join(unknown)} under {ROOT}")
    return ScriptDirectory(str(ROOT), version_locations=[str(ROOT / n) for n in names])


@functools.cache
def heads(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(script(names).get_heads())


def revisions(names: Sequence[str]) -> list[str]:
    """Every revision of the histories ``names``, each history from its first."""
    scripts = script(_names(names))
    return [r.revision for name in _names(names)
            for r in reversed(list(scripts.walk_revisions(f"{name}@base", f"{name}@head")))]


def rebuilds(names: Sequence[str], applied: Iterable[str]) -> set[str]:
    """The histories among ``names`` one of whose ``applied`` revisions says ``rebuild =
    True``: it made its tables anew (a changed key), so their projection is rebuilt from the
    log after the upgrade (``EventStore.migrate``). Core revisions never ask it."""
    applied = set(applied)
    if not applied:
        return set()
    scripts = script(_names(names))
    return {name for name in _names(names) if name != CORE
            for r in scripts.walk_revisions(f"{name}@base", f"{name}@head")
            if r.revision in applied and getattr(r.module, "rebuild", False)}


def current(conn) -> set[str]:
    """The revisions the database is at (empty: none recorded)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return set()
    return set(conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())


def _names(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([CORE, *names]))


class Histories(tuple):
    """The histories of a database (a tuple of names) that also knows which projections
    hold each one's tables (``projections``: history -> projection names), so that an
    upgrade applying a ``rebuild`` revision can mark them owed a rebuild."""

    projections: dict[str, tuple[str, ...]]


def names_of(projections) -> Histories:
    """The histories of a database holding these projections: ``core`` and theirs."""
    out = Histories(_names(p.history for p in projections if p.history))
    out.projections = {}
    for p in projections:
        if p.history and getattr(p, "name", None):  # (a model-only stand-in has no name)
            out.projections[p.history] = (*out.projections.get(p.history, ()), p.name)
    return out


def upgrade(engine, names: Iterable[str], *, extra: Sequence[MetaData] = (),
            to: str = "heads") -> list[str]:
    """Bring the database to the heads of ``core`` and ``names``; the revisions applied now.

    ``extra``: tables of throwaway projections (tests, benchmarks) that have no history,
    created as declared after the upgrade. A service's projection always has a history.
    ``to``: a revision to stop at instead (tests upgrading one revision at a time).

    When ``names`` comes from :func:`names_of` (it knows the projections), a projection
    whose history has a ``rebuild`` revision applied now is marked owed a rebuild in the
    same transaction (:data:`REBUILD_OWED`; :func:`rebuild_owed` does it).
    """
    owners = getattr(names, "projections", {})
    names = _names(names)
    target = heads(names) if to == "heads" else None
    if not extra and target is not None:
        with engine.connect() as conn:
            if current(conn) == target:
                return []
    applied: list[str] = []
    write = engine.execution_options(kaowu_write=True)  # SQLite: BEGIN IMMEDIATE
    # one migration at a time in a process (taken before the database's lock, never after)
    with _process_lock(), write.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_KEY})
        now = current(conn)
        if not now:
            now = _adopt_or_check_empty(conn, names)
        if now != target:
            _run(conn, names, "upgrade", applied, destination=to)
            _mark_owed(conn, [name for history in sorted(rebuilds(names, applied))
                              for name in owners.get(history, ())])
        for meta in extra:
            meta.create_all(conn, checkfirst=True)
    return applied


# -- rebuilds owed by an upgrade ------------------------------------------------------------

def _mark_owed(conn, projections: Sequence[str]):
    """Mark ``projections`` owed a rebuild, in the upgrade's transaction. Not on an empty
    log: tables made anew are what a replay of nothing makes."""
    from sqlalchemy.dialects import postgresql, sqlite

    from shared.eventstore.tables import log_head, projection_state

    if not projections or not conn.execute(select(log_head.c.position)).scalar():
        return
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    for name in projections:
        stmt = insert(projection_state).values(name=name, position=REBUILD_OWED)
        conn.execute(stmt.on_conflict_do_update(index_elements=["name"],
                                                set_={"position": REBUILD_OWED}))
    log.info("schema.rebuild_owed", projections=list(projections))


def owed(conn) -> set[str]:
    """The projections marked owed a rebuild whose rebuild has not committed yet."""
    from shared.eventstore.tables import projection_state

    return set(conn.execute(select(projection_state.c.name)
                            .where(projection_state.c.position == REBUILD_OWED)).scalars())


def rebuild_owed(store, progress=None, on_start=None, on_done=None) -> dict[str, int]:
    """Rebuild every projection of ``store`` an upgrade left owed a rebuild (the process
    that upgraded died before the rebuild committed); ``{projection: position reached}``.

    Run at start, after ``store.migrate()`` and before serving (the services'
    ``EventStoreProvider``, ``shared.migrate``). Nothing owed: one query. ``progress``:
    ``progress(projection name)`` gives the ``(position, head)`` callback of its rebuild;
    ``on_start(projection name, log head)`` is told before each begins, ``on_done(projection
    name, position reached)`` after it commits. On PostgreSQL
    replicas starting together take turns, and a replica that waited finds the work done.
    """
    with store.engine.connect() as conn:
        todo = owed(conn) & {p.name for p in store.projections}
    done = {}
    for p in store.projections:
        if p.name not in todo:
            continue
        with _one_at_a_time(store.engine, p.name) as conn:
            still = p.name in owed(conn)
            conn.commit()  # nothing held open while the rebuild runs
            if not still:
                continue  # another process rebuilt it while this one waited
            if on_start is not None:
                on_start(p.name, store.head())
            done[p.name] = p.rebuild(store, progress=progress(p.name) if progress else None)
            if on_done is not None:
                on_done(p.name, done[p.name])
    return done


@contextlib.contextmanager
def _one_at_a_time(engine, projection: str):
    """A connection holding, on PostgreSQL, a session lock on ``projection``'s owed rebuild."""
    with engine.connect() as conn:
        if conn.dialect.name != "postgresql":
            yield conn
            return
        key = {"k": f"kaowu-owed-rebuild:{projection}"}
        conn.execute(text("SELECT pg_advisory_lock(hashtext(:k))"), key)
        conn.commit()  # the lock is the session's: no transaction left open meanwhile
        try:
            yield conn
        finally:
            conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), key)
            conn.commit()


# Alembic's ``op`` and ``context`` are module-level proxies, bound to one migration at a
# time: two services starting in one process (the tests run many) must not interleave
# their migrations, or one's ``op.create_table`` runs on the other's connection. Made at
# first use, so green under eventlet whenever nameko has monkey-patched threading by then
# (a real RLock would let every greenlet of the thread in); reentrant for adoption's scratch.
_LOCK: list = []


@contextlib.contextmanager
def _process_lock():
    if not _LOCK:
        _LOCK.append(threading.RLock())
    with _LOCK[0]:
        yield


def _run(conn, names, action: str, applied: list[str], destination="heads"):
    """Upgrade (or stamp at ``destination``, a tuple of revisions) on ``conn``, in the
    transaction it is in. Hold ``_process_lock()``."""
    from alembic.runtime.environment import EnvironmentContext

    scripts = script(names)

    def steps(rev, _context):
        if action == "stamp":
            return scripts._stamp_revs(destination, rev)
        return scripts._upgrade_revs(destination, rev)

    def record(*, ctx, step, heads, run_args):
        if action == "upgrade":
            applied.append(step.up_revision_id)

    with EnvironmentContext(config(names), scripts, fn=steps, destination_rev=destination) as env:
        # batch mode: SQLite alters a table by copying it (no ALTER COLUMN, no DROP ...)
        env.configure(connection=conn, render_as_batch=True, on_version_apply=record)
        with env.begin_transaction():  # the caller's: nothing commits before the whole
            env.run_migrations()


# -- the scheme before Alembic -------------------------------------------------------------

def _adopt_or_check_empty(conn, names) -> set[str]:
    """A database with no Alembic record: adopt an old-scheme one, accept an empty one."""
    insp = inspect(conn)
    tables = set(insp.get_table_names()) - {VERSION_TABLE}
    if LEGACY_TABLE not in tables:
        if tables:
            raise SchemaRefused(
                f"the database has tables ({', '.join(sorted(tables)[:8])}) but no record of "
                f"migrations ({VERSION_TABLE} or {LEGACY_TABLE}): not one Kaowu made; "
                "point DATABASE_URL at an empty database or at the service's own")
        return set()
    done = set(conn.execute(text(f"SELECT id FROM {LEGACY_TABLE}")).scalars())
    stamp = legacy_revisions(names, done)
    expected = schema_at(names, stamp)
    found = signature(conn, exclude={LEGACY_TABLE, VERSION_TABLE})
    problems = differences(expected, found)
    if problems:
        raise SchemaRefused(
            "this database was made before Alembic (" + LEGACY_TABLE + "), but its tables are "
            "not what its recorded migrations (" + (", ".join(sorted(done)) or "none") + ") "
            "make, so it cannot be adopted: " + "; ".join(problems[:12])
            + ". It holds a development log: move it aside (make clean removes var/) and "
            "start again, or bring its tables to that shape by hand")
    if stamp:
        _run(conn, names, "stamp", [], destination=tuple(stamp))
    log.info("schema.adopted", stamped=sorted(stamp), legacy=sorted(done))
    return set(stamp)


def legacy_revisions(names: Sequence[str], done: set[str]) -> list[str]:
    """The revision each history is at, for the old scheme's applied ids ``done``."""
    scripts = script(tuple(names))
    known, stamp = set(), []
    for name in names:
        branch = list(reversed(list(scripts.walk_revisions(f"{name}@base", f"{name}@head"))))
        ids = [getattr(r.module, "legacy_id", None) for r in branch]
        known.update(i for i in ids if i)
        upto = 0
        while upto < len(branch) and ids[upto] in done:
            upto += 1
        if any(i in done for i in ids[upto:]):
            raise SchemaRefused(
                f"the old migrations of {name} were applied out of order "
                f"({', '.join(i for i in ids if i in done)} of {', '.join(filter(None, ids))}): "
                "this database cannot be adopted")
        if upto:
            stamp.append(branch[upto - 1].revision)
    strangers = done - known
    if strangers:
        raise SchemaRefused(
            f"this database records migrations no history of {', '.join(names)} knows "
            f"({', '.join(sorted(strangers))}): is it another service's database?")
    return stamp


def schema_at(names: Sequence[str], revisions: Sequence[str]) -> dict:
    """The :func:`signature` of the tables ``revisions`` make (built in a scratch SQLite)."""
    from shared.eventstore.engine import make_engine

    engine = make_engine("sqlite://")
    try:
        with _process_lock(), engine.begin() as conn:
            if revisions:
                _run(conn, tuple(names), "upgrade", [], destination=tuple(revisions))
            return signature(conn, exclude={VERSION_TABLE})
    finally:
        engine.dispose()


# -- comparing schemas, on either database -------------------------------------------------

def _type(t) -> str:
    with contextlib.suppress(NotImplementedError):
        t = t.as_generic()
    if isinstance(t, BigInteger):  # the log's positions: BIGINT, SQLite's INTEGER rowid
        return "Integer"
    if isinstance(t, sqltypes.String) and not isinstance(t, sqltypes.Text) and t.length:
        return f"String({t.length})"
    return type(t).__name__


def signature(conn, exclude=frozenset()) -> dict:
    """Tables, columns (type, nullable), primary keys, indexes and unique constraints, in
    terms both SQLite and PostgreSQL report alike. Read a kind at a time for every table
    (``get_multi_*``: one catalog query each on PostgreSQL, not one per table)."""
    insp = inspect(conn)
    tables = sorted(set(insp.get_table_names()) - set(exclude))
    if not tables:
        return {}
    columns, primary, indexes, unique = (
        read(filter_names=tables) for read in (
            insp.get_multi_columns, insp.get_multi_pk_constraint, insp.get_multi_indexes,
            insp.get_multi_unique_constraints))
    return {table: {
        "columns": {c["name"]: (_type(c["type"]), bool(c["nullable"]))
                    for c in columns[None, table]},
        "primary key": tuple(primary[None, table]["constrained_columns"]),
        "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                          for i in indexes[None, table] if not i.get("duplicates_constraint")),
        "unique": sorted(tuple(u["column_names"]) for u in unique[None, table]),
    } for table in tables}


def differences(expected: dict, found: dict) -> list[str]:
    """What ``found`` lacks or has beyond ``expected``, one line each."""
    out = [f"table {t} missing" for t in sorted(set(expected) - set(found))]
    out += [f"table {t} unexpected" for t in sorted(set(found) - set(expected))]
    for t in sorted(set(expected) & set(found)):
        e, f = expected[t], found[t]
        for c in sorted(set(e["columns"]) | set(f["columns"])):
            if c not in f["columns"]:
                out.append(f"{t}.{c} missing")
            elif c not in e["columns"]:
                out.append(f"{t}.{c} unexpected")
            elif e["columns"][c] != f["columns"][c]:
                out.append(f"{t}.{c} is {f['columns'][c]}, expected {e['columns'][c]}")
        for part in ("primary key", "indexes", "unique"):
            if e[part] != f[part]:
                out.append(f"{t} {part} {f[part]}, expected {e[part]}")
    return out



# -- models against migrations (what ``alembic check`` does) ------------------------------

def models(projections) -> list[MetaData]:
    """The tables a database with these projections should have: the core's and theirs."""
    from shared.eventstore.tables import meta

    return [meta, *(p.metadata for p in projections if p.history)]


def drift(projections, conn=None) -> list:
    """Alembic's autogenerate differences between the models and the histories' heads:
    on ``conn`` (a database at its heads), else on a scratch SQLite upgraded to them."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    if conn is None:
        from shared.eventstore.engine import make_engine

        engine = make_engine("sqlite://")
        try:
            with _process_lock(), engine.begin() as scratch:
                _run(scratch, names_of(projections), "upgrade", [])
                return drift(projections, scratch)
        finally:
            engine.dispose()
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    return compare_metadata(ctx, models(projections))


def render(diffs) -> str:
    """``drift``'s differences, one a line (Alembic's autogenerate tuples)."""
    return "\n".join(f"  {d!r}" for d in diffs)
