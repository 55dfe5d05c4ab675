"""The read-model side of a projection: what a service declares (``Projection``: its
tables, its Alembic history, the event types it reads, its pure ``handle``) and a sorted
``snapshot`` of its rows for comparing a live model with its rebuild."""

from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import MetaData, Table, select

from shared.events import StoredEvent
from shared.projection.changes import Change, apply_changes
from shared.projection.rebuild import rebuild_read_model
from shared.projection.statements import RowStatements


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

    def statements(self, dialect) -> RowStatements:
        """The statements that write this projection's rows on ``dialect`` (an engine's: its
        JSON serializer is the columns'), built as they are first needed and kept."""
        built = self.__dict__.setdefault("_statements", {})
        statements = built.get(dialect)
        if statements is None:
            statements = built[dialect] = RowStatements(self.tables, dialect)
        return statements

    def apply(self, conn, events: Sequence[StoredEvent]):
        """Write ``handle``'s changes for ``events`` in the appending transaction
        (``changes.apply_changes``)."""
        apply_changes(conn, self, events)

    def rebuild(self, store, batch: int = 20000,
                progress: Callable[[int, int], None] | None = None,
                window: int = 100_000) -> int:
        """Replace the read model by a replay of the log; returns the log position it then
        stands at. Runs while the service runs; nothing is missed or applied twice, and
        readers see the old model until the new one commits (``shared.projection.rebuild``)."""
        return rebuild_read_model(store, self, batch, progress, window)


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
