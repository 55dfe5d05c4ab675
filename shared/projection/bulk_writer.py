"""Writing a rebuild's rows many at a time with the driver's own cursor (``BulkWriter``)."""

import orjson
from sqlalchemy import JSON, Boolean, Date, DateTime, Float, Integer, String, Table, TypeDecorator

from shared.projection.changes import Steps, rounds, write_with_sqlalchemy
from shared.projection.statements import RowStatements


class BulkWriter:
    """Writes a rebuild's rows with the driver's own cursor, in the rebuild's transaction.

    PostgreSQL: thousands of rows per statement, handed over as one JSON document
    (``orjson``) and unpacked by the server (``json_to_recordset`` with each column's type):
    ``INSERT … SELECT`` for new rows, ``ON CONFLICT`` for upserts, ``UPDATE … FROM`` and
    ``DELETE … USING`` for the steps of rows written before. Python's share is one
    ``orjson.dumps`` per batch; the server's runs on the rebuild's ``DatabaseWorker`` thread
    while Python folds the next batch. Columns JSON cannot carry exactly (``Numeric``,
    binary, arrays, …), and SQLite, take the statements an append writes with
    (``RowStatements``: the bind processors, many rows per round trip). Tables with
    Python-side column defaults go through SQLAlchemy (it fills those in), in the calling
    thread.
    """

    CHUNK = 10_000  # rows per statement on PostgreSQL
    _JSON_SAFE = (String, Integer, Boolean, JSON, Float, Date, DateTime)

    def __init__(self, conn, tables: dict[str, Table], order: dict[str, int]):
        self.conn = conn
        self.dialect = conn.dialect
        self.pg = conn.dialect.name == "postgresql"
        self.tables = tables  # as the projection names them -> the tables written
        self.order = order
        self.statements = RowStatements(tables, conn.dialect)
        self._cursor = None
        self._sql: dict[tuple, str] = {}
        self._bg = None
        self._q = conn.dialect.identifier_preparer
        self._literal: bool | None = None

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

    def _json_safe(self, table: str) -> bool:
        return self.pg and all(isinstance(c.type, self._JSON_SAFE)
                               and not isinstance(c.type, TypeDecorator)
                               for c in self.tables[table].columns)

    def write(self, kind: str, table: str, keycols: tuple, valcols: tuple, dicts: list[dict]):
        """One statement kind for many rows: "insert" (new rows), "Upsert", "Update" or
        "Delete". ``dicts`` hold ``keycols + valcols`` (Delete: the key only)."""
        if not self.statements.plain(table):
            self._sqlalchemy(lambda: write_with_sqlalchemy(
                self.conn, self.tables[table], kind, keycols, valcols, dicts))
        elif self._json_safe(table):
            self._do(lambda: self._write_json(kind, table, keycols, valcols, dicts))
        else:
            self._do(lambda: self.statements.run(self.cursor, kind, table, keycols, valcols, dicts))

    def _type(self, table: str, col: str) -> str:
        return self.tables[table].c[col].type.compile(dialect=self.dialect)

    def _write_json(self, kind, table, keycols, valcols, dicts):
        sql = self._sql.get((kind, table, keycols, valcols, "json"))
        if sql is None:
            sql = self._sql[(kind, table, keycols, valcols, "json")] = self._json_sql(
                kind, table, keycols, valcols)
        option = orjson.OPT_NON_STR_KEYS
        literal = self._literal_ok()
        if literal:
            head, tail = sql.encode().split(b"%s", 1)
        for lo in range(0, len(dicts), self.CHUNK):
            chunk = dicts[lo:lo + self.CHUNK]
            try:
                doc = orjson.dumps(chunk, option=option)
            except TypeError:  # a value JSON cannot carry as it is: the driver's way
                self.statements.run(self.cursor, kind, table, keycols, valcols, chunk)
                continue
            if literal:
                # the document as a string literal, quotes doubled: what the driver would
                # send, without its decoding, re-encoding and escaping of the whole document
                # (five times orjson's own time)
                self.cursor.execute(head + b"'" + doc.replace(b"'", b"''") + b"'" + tail)
            else:
                self.cursor.execute(sql, (doc.decode(),))

    def _literal_ok(self) -> bool:
        """Whether a UTF-8 document can go into the statement as a plain string literal: the
        connection's encoding is UTF-8 and a backslash is no escape in it."""
        if self._literal is None:
            c = self.cursor.connection
            self._literal = (c.encoding in ("UTF8", "UNICODE") and
                             c.get_parameter_status("standard_conforming_strings") == "on")
        return self._literal

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
        if kind == "insert" or kind == "Upsert":
            sql = (f"INSERT INTO {t} ({', '.join(q(c) for c in cols)}) "
                   f"SELECT {', '.join(value(c) for c in cols)} FROM {source}")
            if kind == "Upsert":
                sql += self.statements.on_conflict(keycols, valcols)
            return sql
        if kind == "Update":
            sets = ", ".join(f"{q(c)} = {value(c)}" for c in valcols)
            return f"UPDATE {t} AS t SET {sets} FROM {source} WHERE {match_keys}"
        return f"DELETE FROM {t} AS t USING {source} WHERE {match_keys}"

    # -- what the fold hands over --------------------------------------------------------

    def insert(self, table: str, cols: tuple, dicts: list[dict]):
        """New rows: ``cols`` are the columns every dict has (key and values)."""
        self.write("insert", table, (), cols, dicts)

    def steps(self, rows: list[tuple[str, Steps]]):
        """Rows written before: their steps in rounds (``changes.rounds``)."""
        for table, kind, keycols, valcols, dicts in rounds(rows):
            self.write(kind, table, keycols, valcols, dicts)
