"""Where things stand: the log's head and identity, the relay's position, each consumer's
tracking record (how far an upstream log is applied) and the read models' positions."""

from sqlalchemy import select

from shared.eventstore.statements import HEAD, LOG_ID, RELAY_POSITION, TRACKED
from shared.eventstore.tables import projection_state, tracking_table


class LogPositions:
    """The positions half of ``EventStore`` (it has ``engine``, ``projections``)."""

    def head(self) -> int:
        with self.read_engine.connect() as c:
            return c.execute(HEAD).scalar_one()

    @property
    def log_id(self) -> str:
        if self._log_id is None:
            with self.read_engine.connect() as c:
                self._log_id = c.execute(LOG_ID).scalar_one()
        return self._log_id

    def tracked_position(self, upstream: str) -> int:
        return self.tracked(upstream)[0]

    def tracked(self, upstream: str) -> tuple[int, str | None]:
        """(position, log id) of what this service has applied of ``upstream``'s log."""
        with self.read_engine.connect() as c:
            row = c.execute(TRACKED, {"upstream": upstream}).first()
        return (row.position, row.log_id) if row else (0, None)

    def tracking(self) -> dict[str, int]:
        with self.read_engine.connect() as c:
            return dict(c.execute(select(tracking_table.c.upstream, tracking_table.c.position)).all())

    def relay_position(self) -> int:
        with self.read_engine.connect() as c:
            return c.execute(RELAY_POSITION).scalar_one()

    def projection_positions(self) -> dict[str, int]:
        """Read models are written in the transaction of every append, so each stands at
        the log's head; ``projection_state`` records how far the last rebuild went."""
        head = self.head()
        with self.read_engine.connect() as c:
            rebuilt = dict(c.execute(select(projection_state.c.name, projection_state.c.position)).all())
        return {p.name: max(head, rebuilt.get(p.name, 0)) for p in self.projections}

