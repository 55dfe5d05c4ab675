"""A rebuild's rows, folded in memory before they are written (``Fold``)."""

import itertools
import operator
from collections.abc import Callable, Iterable

from sqlalchemy import Table

from shared.events import StoredEvent
from shared.projection.bulk_writer import BulkWriter
from shared.projection.changes import Change, Delete, Steps, Upsert


class Fold:
    """A rebuild's rows, folded in memory before they are written.

    The read model starts empty, so a row this rebuild has not written yet ("fresh") is
    known in full: the dict of its columns, or nothing (it does not exist). An Upsert
    creates it or sets values on it, an Update sets values on it if it exists, a Delete
    forgets it; it is written once, by a plain INSERT. Once written (the window was full:
    the oldest rows go first), a row's later changes are held as coalesced ``Steps`` and
    written as upserts, updates and deletes, since what it holds is now in the database.
    Written rows are remembered by the hash of their id only (memory); a collision merely
    sends a fresh row down the ``Steps`` path, which is right for any row.
    """

    def __init__(self, conn, tables: dict[str, Table], order: dict[str, int], window: int):
        self.writer = BulkWriter(conn, tables, order)
        self._linked = any(t.foreign_keys for t in tables.values())
        self.window = max(1, window)
        # (table, key values) -> row; a table's rows are keyed by the columns of the first
        # key seen for it (a key of other columns: (table, None, its sorted items))
        self.rows: dict[tuple, dict | Steps] = {}
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
                            rows[rid] = {**key, **ch.values}
                        continue
                    row = rows[rid] = Steps()
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
        steps: list[tuple[str, Steps]] = []
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
