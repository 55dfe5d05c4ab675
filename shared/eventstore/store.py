"""A service's event log: units of work, commands run with retries on conflicts, the
listeners told of each commit, and ``open_store`` (engine, store and migrations)."""

import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from shared import migrations
from shared.clock import SystemClock
from shared.contracts import EventRegistry
from shared.errors import Conflict
from shared.events import NewEvent, StoredEvent
from shared.eventstore.engine import ensure_database, make_engine
from shared.eventstore.positions import LogPositions
from shared.eventstore.reading import LogReader
from shared.eventstore.tables import blobs_table
from shared.eventstore.unit_of_work import ConcurrencyConflict, Context, Transaction


class EventStore(LogReader, LogPositions):
    """One service's log. Thread- and greenthread-safe; cheap to share."""

    def __init__(self, engine, registry: EventRegistry, *, clock=None, projections=()):
        self.engine = engine
        self.write_engine = engine.execution_options(kaowu_write=True)
        # reads outside a unit of work: on PostgreSQL in autocommit (``make_engine``), one
        # round trip each (no BEGIN before, no ROLLBACK when the connection goes back)
        self.read_engine = (engine.execution_options(kaowu_read=True)
                            if engine.dialect.name == "postgresql" else engine)
        self.dialect = engine.dialect.name
        self.registry = registry
        self.clock = clock or SystemClock()
        self.projections = list(projections)
        # the Alembic histories of this database: the core tables', each projection's
        self.histories = migrations.names_of(self.projections)
        self._listeners: list[Callable[[list[StoredEvent]], None]] = []
        self._log_id: str | None = None
        self._versions: dict[str, int | None] = {}

    def migrate(self, progress=None, on_start=None, on_done=None) -> list[str]:
        """Upgrade the schema to the heads of its histories; the revisions applied now. A
        projection whose history had a ``rebuild`` revision applied (its tables made anew,
        empty: rows keyed differently) is marked owed a rebuild in the upgrade's own
        transaction and rebuilt from the log here; a process dying in between leaves the
        mark for the next start, which rebuilds it here too (``migrations.rebuild_owed``:
        ``progress``, ``on_start`` and ``on_done`` as there)."""
        applied = migrations.upgrade(self.engine, self.histories, extra=[
            p.metadata for p in self.projections if p.history is None])
        migrations.rebuild_owed(self, progress=progress, on_start=on_start, on_done=on_done)
        return applied

    def schema_heads(self) -> set[str]:
        """The Alembic revisions the database is at."""
        with self.engine.connect() as conn:
            return migrations.current(conn)

    def on_commit(self, listener: Callable[[list[StoredEvent]], None]):
        """Call ``listener(events)`` with what each transaction appended, after it commits
        (wakes the relay, counts events for metrics)."""
        self._listeners.append(listener)

    # -- writing -------------------------------------------------------------------------

    @contextmanager
    def transaction(self, context: Context | None = None) -> Iterator["Transaction"]:
        with self.write_engine.begin() as conn:
            tx = Transaction(self, conn, context or Context())
            yield tx
            tx.flush()
        if tx.appended:
            for listener in self._listeners:
                listener(tx.appended)

    def append(self, events: Sequence[NewEvent], expected: dict[str, int | None] | None = None,
               context: Context | None = None) -> list[StoredEvent]:
        with self.transaction(context) as tx:
            tx.append(events, expected)
        return tx.appended

    def execute(self, command: Callable[["Transaction"], object], context: Context | None = None,
                retries: int = 8):
        """Run a command (read, decide, append) in a transaction; on a version conflict
        re-run it from the start with fresh state. Gives up with ``Conflict``."""
        for attempt in range(retries):
            try:
                with self.transaction(context) as tx:
                    return command(tx)
            except DBAPIError as exc:
                # a connection the database or a network hiccup dropped: once more, fresh
                if not exc.connection_invalidated or attempt == retries - 1:
                    raise
            except ConcurrencyConflict as exc:
                if attempt == retries - 1:
                    raise Conflict("Someone else changed this at the same moment; please try again.",
                                   {"streams": sorted(exc.stream_ids)}) from None
                time.sleep(random.uniform(0, 0.005 * (attempt + 1)))

    def get_blob(self, sha256: str):
        with self.read_engine.connect() as c:
            row = c.execute(select(blobs_table).where(blobs_table.c.sha256 == sha256)).first()
        return None if row is None else {"content_type": row.content_type, "data": row.data}

    def public_view(self, ev: StoredEvent, service: str) -> dict:
        """What leaves the service: private events keep their place but not their payload."""
        d = ev.to_dict()
        d["service"] = service
        d["log_id"] = self.log_id
        public = self.registry.public_payload(ev.type, ev.payload)
        if public is None:
            d["payload"] = {}
            d["private"] = True
        return d


def open_store(url: str, registry: EventRegistry, *, clock=None, projections=(),
               create_database: bool = True, **reports) -> EventStore:
    """Engine, store and migrations in one step (services, CLI, tests); ``reports``
    (``progress``, ``on_start``, ``on_done``) tell of a rebuild the migrations owe
    (``EventStore.migrate``)."""
    if create_database:
        ensure_database(url)
    store = EventStore(make_engine(url), registry, clock=clock, projections=projections)
    store.migrate(**reports)
    return store
