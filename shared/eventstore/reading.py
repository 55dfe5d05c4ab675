"""Reading the log back: a stream, the events after a position, and the whole log in
batches for rebuilds (``replay``), decoded into ``StoredEvent``s (upcast where stored at an
older schema version)."""

from collections.abc import Iterable, Iterator

import orjson

from shared.events import STORED_EVENT_SLOTS, StoredEvent, stored_event
from shared.eventstore.engine import driver_rows
from shared.eventstore.statements import EVENTS_AFTER, LAST_OF_TYPES, PG_STREAM, STREAM
from shared.eventstore.threads import DatabaseWorker, gc_paused


class LogReader:
    """The reading half of ``EventStore`` (it has ``engine``, ``dialect``, ``registry``)."""


    def _current_version(self, type_: str) -> int | None:
        """The registry's schema version of ``type_`` (None: not registered), cached."""
        try:
            return self._versions[type_]
        except KeyError:
            v = self._versions[type_] = (self.registry.get(type_).version
                                         if type_ in self.registry else None)
            return v

    def _decode_all(self, result) -> list[StoredEvent]:
        return self._decoded(result.tuples().all())

    def _decoded(self, rows) -> list[StoredEvent]:
        out = []
        with gc_paused():
            self._decode_rows(rows, out, orjson.loads, stored_event, self._versions)
        return out

    def _decode_rows(self, rows, out, loads, make, versions):
        for position, stream_id, stream_version, type_, schema_version, payload, metadata in rows:
            payload = loads(payload)
            current = versions[type_] if type_ in versions else self._current_version(type_)
            if schema_version != current and current is not None:
                schema_version, payload = self.registry.upcast(type_, schema_version, payload)
            out.append(make(position, stream_id, stream_version, type_, schema_version,
                            payload, loads(metadata)))

    def read_stream(self, stream_id: str, conn=None) -> list[StoredEvent]:
        if self.dialect == "postgresql":  # on the driver's cursor
            if conn is not None:
                return self._decoded(driver_rows(conn, PG_STREAM, (stream_id,)))
            with self.read_engine.begin() as c:  # autocommit (``make_engine``): sends no BEGIN
                return self._decoded(driver_rows(c, PG_STREAM, (stream_id,)))
        params = {"stream_id": stream_id}
        if conn is not None:
            return self._decode_all(conn.execute(STREAM, params))
        with self.read_engine.connect() as c:
            return self._decode_all(c.execute(STREAM, params))

    def events_after(self, position: int, limit: int = 1000, *, types: Iterable[str] | None = None,
                     stream_id: str | None = None, conn=None) -> list[StoredEvent]:
        types = list(types) if types else None
        q = EVENTS_AFTER[(types is not None, bool(stream_id))]
        params = {"after": position, "limit": limit, "types": types, "stream_id": stream_id}
        if conn is not None:
            return self._decode_all(conn.execute(q, params))
        with self.read_engine.connect() as c:
            return self._decode_all(c.execute(q, params))

    def last_of_types(self, after: int, upto: int, conn=None) -> dict[str, int]:
        """``{type: position}``: the last event of each type after ``after`` up to ``upto``."""
        params = {"after": after, "upto": upto}
        if conn is not None:
            return dict(conn.execute(LAST_OF_TYPES, params).tuples().all())
        with self.read_engine.connect() as c:
            return dict(c.execute(LAST_OF_TYPES, params).tuples().all())

    def iter_after(self, position: int = 0, batch: int = 5000, conn=None) -> Iterator[StoredEvent]:
        """Every event after ``position``, read in batches (``replay``; without ``conn``, on
        a connection of its own until the iteration ends)."""
        if conn is not None:
            for got in self.replay(conn, position, None, batch):
                yield from got
            return
        # PostgreSQL: the next batch is fetched while this one is consumed
        worker = DatabaseWorker() if self.dialect == "postgresql" else None
        with self.engine.connect() as c:
            try:
                for got in self.replay(c, position, None, batch, worker=worker):
                    yield from got
            finally:  # before the connection goes back to the pool
                if worker is not None:
                    worker.close()

    def replay(self, conn, after: int = 0, upto: int | None = None, batch: int = 20000,
               worker: DatabaseWorker | None = None,
               types: Iterable[str] | None = None) -> Iterator[list[StoredEvent]]:
        """The events after ``after`` up to ``upto`` (all: None), in batches, for rebuilds.

        Read on ``conn`` (in its transaction) with the driver's own cursor, the JSON decoded
        from bytes; payloads are not validated again (they were when appended) and are
        upcast only when stored at an older schema version than the registry's. With a
        ``worker`` (PostgreSQL), the next batch is fetched on its thread while the caller
        works on this one. ``types``: only events of these types.
        """
        raw = conn.connection.dbapi_connection.cursor()
        types = sorted(types) if types is not None else None
        if self.dialect == "postgresql":
            import psycopg2.extensions

            psycopg2.extensions.register_type(psycopg2.extensions.BYTES, raw)  # text as bytes
            sql = ("SELECT position, stream_id, stream_version, type, schema_version, payload, "
                   "metadata FROM events WHERE position > %s AND position <= %s"
                   + (" AND type = ANY(%s)" if types is not None else "")
                   + " ORDER BY position LIMIT %s")
        else:
            sql = ("SELECT position, stream_id, stream_version, type, schema_version, "
                   "CAST(payload AS BLOB), CAST(metadata AS BLOB) FROM events "
                   "WHERE position > ? AND position <= ?"
                   + (f" AND type IN ({', '.join('?' * len(types))})" if types else
                      " AND 0" if types is not None else "")
                   + " ORDER BY position LIMIT ?")
        upto = (1 << 62) if upto is None else upto
        only = () if types is None else (types,) if self.dialect == "postgresql" else tuple(types)

        def fetch(after):
            raw.execute(sql, (after, upto, *only, batch))
            return raw.fetchall()

        def fetch_after(after):  # the rows, when called
            if worker is not None:
                return worker.call(lambda: fetch(after))
            rows = fetch(after)
            return lambda: rows

        loads, new, cls = orjson.loads, object.__new__, StoredEvent
        s0, s1, s2, s3, s4, s5, s6 = STORED_EVENT_SLOTS  # StoredEvent built inline: per event
        types: dict = {}  # type as read -> (name, current schema version or None)
        try:
            pending = fetch_after(after) if after < upto else None
            while pending is not None:
                rows = pending()
                if not rows:
                    return
                last = rows[-1][0]
                pending = fetch_after(last) if len(rows) == batch and last < upto else None
                out = []
                append = out.append
                with gc_paused():
                    for position, stream_id, stream_version, type_, schema_version, payload, md in rows:
                        known = types.get(type_)
                        if known is None:
                            name = type_.decode() if type_.__class__ is bytes else type_
                            known = types[type_] = (name, self._current_version(name))
                        name, current = known
                        payload = loads(payload)
                        if schema_version != current and current is not None:
                            schema_version, payload = self.registry.upcast(name, schema_version,
                                                                           payload)
                        ev = new(cls)
                        s0(ev, position)
                        s1(ev, stream_id.decode() if stream_id.__class__ is bytes else stream_id)
                        s2(ev, stream_version)
                        s3(ev, name)
                        s4(ev, schema_version)
                        s5(ev, payload)
                        s6(ev, loads(md))
                        append(ev)
                del rows
                yield out
        finally:
            if worker is None:
                raw.close()
            else:
                worker.cleanup(raw.close)

