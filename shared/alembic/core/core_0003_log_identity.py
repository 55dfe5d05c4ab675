"""This log's identity (positions count in one log; a restored or reset database is
another), and which upstream log a tracking record's position counts in.

Revision core_0003 (before Alembic: core.0003_log_identity).
Frozen: written out column by column, never from today's table objects.
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "core_0003"
down_revision = "core_0002"
branch_labels = None
depends_on = None
legacy_id = "core.0003_log_identity"  # its id in the scheme before Alembic (adopting old databases)


def upgrade():
    identity = op.create_table(
        "log_identity",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("log_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(identity, [{"id": 1, "log_id": uuid.uuid4().hex}])
    with op.batch_alter_table("tracking") as batch:  # SQLite: ADD COLUMN needs no copy
        batch.add_column(sa.Column("log_id", sa.String(length=32), nullable=True))
