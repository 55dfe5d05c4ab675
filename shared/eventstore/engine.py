"""Engines for the event log's database: SQLite (WAL, ``BEGIN IMMEDIATE`` for writes) or
PostgreSQL (psycopg2, a pool, batched ``executemany``); creating the database in dev."""

import json
from collections.abc import Callable

import orjson
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool, QueuePool


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
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "begin")
    def _begin(conn):
        # reads outside a unit of work (``EventStore.read_engine``, option ``kaowu_read``)
        # in autocommit: psycopg2 sends no BEGIN before them and nothing to end them. Set on
        # the driver per transaction, which sends nothing (SQLAlchemy's isolation_level
        # option would: a SET when the connection goes back to the pool)
        conn.connection.dbapi_connection.autocommit = bool(
            conn.get_execution_options().get("kaowu_read"))
    return engine


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


def count_round_trips(engine, count: Callable[[str], None]):
    """Call ``count(kind)`` for each round trip ``engine``'s connections make to the
    database, counted client-side (no ``pg_stat_statements`` needed): ``statement`` (one per
    execute, an ``executemany`` batch included), and on PostgreSQL the ``begin`` psycopg2
    sends before a transaction's first statement, the ``commit`` and the ``rollback`` it
    sends when a transaction is open (none in autocommit, none for an idle connection).
    SQLite has no round trips; there it counts each statement, begin, commit and rollback."""
    if engine.dialect.name == "postgresql":
        from psycopg2.extensions import TRANSACTION_STATUS_IDLE as idle

        def before_execute(conn, cursor, statement, parameters, context, executemany):
            dbapi = cursor.connection
            if not dbapi.autocommit and dbapi.info.transaction_status == idle:
                count("begin")
            count("statement")

        def ending(kind):
            def end(conn):
                if conn.invalidated:  # the connection is gone: nothing is sent
                    return
                if conn.connection.dbapi_connection.info.transaction_status != idle:
                    count(kind)
            return end

        event.listen(engine, "before_cursor_execute", before_execute)
        event.listen(engine, "commit", ending("commit"))
        event.listen(engine, "rollback", ending("rollback"))
        return
    event.listen(engine, "before_cursor_execute", lambda *args: count("statement"))
    for kind in ("begin", "commit", "rollback"):
        event.listen(engine, kind, lambda conn, kind=kind: count(kind))


def driver_executed(conn, cursor, statement: str, parameters, executemany: bool = False):
    """Tell ``conn``'s ``before_cursor_execute`` listeners (``count_round_trips``) of a
    statement run on the driver's own cursor, past SQLAlchemy."""
    for listener in conn.dispatch.before_cursor_execute:
        listener(conn, cursor, statement, parameters, None, executemany)


def driver_error(conn, cursor, exc) -> DBAPIError:
    """A driver error as SQLAlchemy would have raised it, and handled as it would: if the
    connection is gone, it and every pooled connection as old are invalidated (a server
    restart dropped them all; ``EventStore.execute`` then runs the command again on a
    fresh one, the next call finds a renewed pool)."""
    dialect = conn.dialect
    gone = dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor)
    if gone:
        conn.engine.pool._invalidate(conn.connection, exc)  # as Connection does on a disconnect
        conn.invalidate(exc)
    return DBAPIError.instance(None, None, exc, dialect.dbapi.Error,
                               connection_invalidated=gone, dialect=dialect)


def driver_rows(conn, statement: str, parameters) -> list[tuple]:
    """The rows of one statement run on ``conn``'s driver cursor, past SQLAlchemy: for the
    short indexed reads every command and consumer makes, whose Python cost is mostly
    SQLAlchemy's statement machinery. Counted as SQLAlchemy's statements are
    (``driver_executed``); a driver error raised as SQLAlchemy would (``driver_error``)."""
    cur = conn.connection.dbapi_connection.cursor()
    try:
        driver_executed(conn, cur, statement, parameters)
        cur.execute(statement, parameters)
        return cur.fetchall()
    except conn.dialect.dbapi.Error as exc:
        raise driver_error(conn, cur, exc) from exc
    finally:
        cur.close()
