"""The core tables every service's database has (Alembic's core history creates them)."""

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# SQLite makes an INTEGER PRIMARY KEY the rowid: the fastest key it has.
_BigInt = BigInteger().with_variant(Integer, "sqlite")

meta = MetaData()

events_table = Table(
    "events", meta,
    Column("position", _BigInt, primary_key=True, autoincrement=False),
    Column("stream_id", String(200), nullable=False),
    Column("stream_version", Integer, nullable=False),
    Column("type", String(100), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("payload", Text, nullable=False),
    Column("metadata", Text, nullable=False),
    UniqueConstraint("stream_id", "stream_version", name="uq_events_stream_version"),
)

log_head = Table(
    "log_head", meta,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("position", _BigInt, nullable=False),
)

# how far a consumer has applied each upstream log (tracking records)
tracking_table = Table(
    "tracking", meta,
    Column("upstream", String(100), primary_key=True),
    Column("position", _BigInt, nullable=False),
    Column("log_id", String(32)),  # which log of the upstream the position counts in
)

# this log's identity: positions count in one log; a restored or reset database is another
log_identity = Table(
    "log_identity", meta,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("log_id", String(32), nullable=False),
)

# how far the relay has published this log
relay_table = Table(
    "relay_state", meta,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("position", _BigInt, nullable=False),
)

projection_state = Table(
    "projection_state", meta,
    Column("name", String(100), primary_key=True),
    Column("position", _BigInt, nullable=False),
)

# content-addressed uploads (photos, proofs): events carry the hash, never the bytes
blobs_table = Table(
    "blobs", meta,
    Column("sha256", String(64), primary_key=True),
    Column("content_type", String(100), nullable=False),
    Column("size", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
)
