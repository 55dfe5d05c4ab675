"""Writing a rebuild's rows many at a time with the driver's own cursor (``BulkWriter``)."""

import operator

import orjson
from sqlalchemy import JSON, Boolean, Date, DateTime, Float, Integer, String, Table, TypeDecorator

from shared.projection.changes import Delete, Update, Upsert, insert_for, write


class Steps(list):
    """Changes to a row already written by this rebuild, coalesced as ``changes.coalesce`` does:
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


class BulkWriter:
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
        write(self.conn, self.tables, steps)

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

    def steps(self, rows: list[tuple[str, Steps]]):
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
