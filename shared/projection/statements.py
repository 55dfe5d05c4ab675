"""The driver SQL that writes a projection's rows, built once per table, change kind and
columns (``RowStatements``).

Through SQLAlchemy each row change cost a statement built, its cache key and, for an
upsert, a compilation on every execute (SQLAlchemy 2.0 does not cache ``ON CONFLICT``):
the largest share of a command's Python time. Here a statement's text is built once per
(kind, table, key columns, value columns) for a dialect and run on the driver's own
cursor, the values through each column type's bind processor (what SQLAlchemy would have
sent), many rows per round trip. An append (``changes``) and a rebuild (``bulk_writer``)
write with them alike. Tables with Python-side column defaults are not ``plain``: their
rows go through SQLAlchemy (``changes.write_with_sqlalchemy``), which fills those in.

Kinds: ``"insert"`` (new rows: a rebuild's), ``"Upsert"``, ``"Update"``, ``"Delete"``.
"""

import operator

from sqlalchemy import Table

from shared.eventstore.engine import driver_executed


class RowStatements:
    PAGE = 1000  # rows per round trip

    def __init__(self, tables: dict[str, Table], dialect):
        self.tables = tables  # as the projection names them -> the tables written
        self.dialect = dialect
        self.pg = dialect.name == "postgresql"
        self._q = dialect.identifier_preparer
        self._sql: dict[tuple, str] = {}
        self._procs: dict[str, dict] = {}
        self._plain: dict[str, bool] = {}

    def plain(self, table: str) -> bool:
        """Whether the driver SQL does what SQLAlchemy would (no Python-side defaults)."""
        plain = self._plain.get(table)
        if plain is None:
            plain = self._plain[table] = not any(
                c.default is not None or c.onupdate is not None for c in self.tables[table].columns)
        return plain

    def run(self, cursor, kind: str, table: str, keycols: tuple, valcols: tuple,
            dicts: list[dict], conn=None):
        """One statement for many rows, each dict holding ``keycols + valcols`` (Delete: the
        key only). ``conn``: told of each round trip (``driver_executed``)."""
        key = (kind, table, keycols, valcols)
        sql = self._sql.get(key)
        if sql is None:
            sql = self._sql[key] = self._build(kind, table, keycols, valcols)
        cols = valcols + keycols if kind == "Update" else keycols + valcols
        rows = self.params(table, cols, dicts)
        page = self.PAGE
        for lo in range(0, len(rows), page):
            part = rows[lo:lo + page] if len(rows) > page else rows
            if conn is not None:
                driver_executed(conn, cursor, sql, part, executemany=True)
            if not self.pg:
                cursor.executemany(sql, part)
            elif kind == "insert" or kind == "Upsert":
                from psycopg2.extras import execute_values

                execute_values(cursor, sql, part, page_size=page)
            elif len(part) == 1:
                cursor.execute(sql, part[0])
            else:
                from psycopg2.extras import execute_batch

                execute_batch(cursor, sql, part, page_size=page)

    def params(self, table: str, cols: tuple, dicts: list[dict]) -> list:
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

    def on_conflict(self, keycols: tuple, valcols: tuple) -> str:
        """An upsert's tail: the value columns replace the row's, keyed by ``keycols``."""
        q = self._q.quote
        sets = [c for c in valcols if c not in keycols]
        return (f" ON CONFLICT ({', '.join(q(c) for c in keycols)}) "
                + ("DO UPDATE SET " + ", ".join(f"{q(c)} = excluded.{q(c)}" for c in sets)
                   if sets else "DO NOTHING"))

    def _build(self, kind, table, keycols, valcols) -> str:
        q, t = self._q.quote, self._q.format_table(self.tables[table])
        mark = "%s" if self.pg else "?"
        if kind == "insert" or kind == "Upsert":
            cols = keycols + valcols
            values = "%s" if self.pg else "(" + ", ".join("?" * len(cols)) + ")"
            sql = f"INSERT INTO {t} ({', '.join(q(c) for c in cols)}) VALUES {values}"
            return sql + self.on_conflict(keycols, valcols) if kind == "Upsert" else sql
        where = " AND ".join(f"{q(c)} = {mark}" for c in keycols)
        if kind == "Update":
            return f"UPDATE {t} SET {', '.join(f'{q(c)} = {mark}' for c in valcols)} WHERE {where}"
        return f"DELETE FROM {t} WHERE {where}"
