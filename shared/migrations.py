"""Schema migrations: an ordered list per service, applied once each, recorded in the DB.

Small on purpose: each migration is a function of a SQLAlchemy connection. On PostgreSQL an
advisory lock keeps two replicas starting together from racing each other.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, MetaData, String, Table, select, text


@dataclass(frozen=True)
class Migration:
    id: str  # "<owner>.<NNNN>_<what>", unique across the service's list
    up: Callable
    # a read model's migration that changes what its rows are keyed by: its projection is
    # rebuilt from the log once the migration is applied (``EventStore.migrate``)
    rebuild: bool = False


_meta = MetaData()
schema_migrations = Table(
    "schema_migrations", _meta,
    Column("id", String(200), primary_key=True),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

_ADVISORY_KEY = 0x4B414F5755  # "KAOWU"


def create_tables(*tables):
    """A migration step that creates the given tables (and their indexes)."""
    def up(conn):
        for t in tables:
            t.create(conn, checkfirst=True)
    return up


def recreate_tables(*tables):
    """A migration step that drops the given tables and creates them as now declared (a
    changed primary key); with ``rebuild=True`` the projection then refills them."""
    def up(conn):
        for t in reversed(tables):
            t.drop(conn, checkfirst=True)
        for t in tables:
            t.create(conn, checkfirst=True)
    return up


def migrate(engine, migrations: Sequence[Migration]) -> list[str]:
    """Apply what is not yet applied, in order. Returns the ids applied now."""
    ids = [m.id for m in migrations]
    if len(ids) != len(set(ids)):
        raise ValueError("duplicate migration id")
    applied_now = []
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_KEY})
        schema_migrations.create(conn, checkfirst=True)
        done = set(conn.execute(select(schema_migrations.c.id)).scalars())
        for m in migrations:
            if m.id in done:
                continue
            m.up(conn)
            conn.execute(schema_migrations.insert().values(id=m.id, applied_at=datetime.now(UTC)))
            applied_now.append(m.id)
    return applied_now
