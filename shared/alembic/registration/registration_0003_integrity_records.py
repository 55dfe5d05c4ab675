"""Registration: integrity_records, the integrity archive (诚信档案) as verification publishes
it, read when a candidate pledges (告知承诺) at submission.

Revision registration_0003. Frozen: written out column by column, never from today's
table objects. A fresh table fills from the log: the events it folds arrive after it.
"""

import sqlalchemy as sa
from alembic import op

revision = "registration_0003"
down_revision = "registration_0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "integrity_records",
        sa.Column("record_id", sa.String(length=100), nullable=False),
        sa.Column("id_type", sa.String(length=32), nullable=False),
        sa.Column("id_number", sa.String(length=64), nullable=False),
        sa.Column("recorded_on", sa.String(length=10), nullable=True),
        sa.Column("expires_on", sa.String(length=10), nullable=True),
        sa.PrimaryKeyConstraint("record_id"),
    )
    op.create_index("ix_registration_integrity_person", "integrity_records",
                    ["id_type", "id_number"], unique=False)
