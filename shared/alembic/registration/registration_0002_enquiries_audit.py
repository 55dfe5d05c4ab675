"""Registration: the enquiry an application waits on (疑问核实), and the audit trail of the
authority's decisions taken here.

Revision registration_0002 (before Alembic: registration.0002_enquiries_audit).
Frozen: written out column by column, never from today's table objects.
"""

import sqlalchemy as sa
from alembic import op

revision = "registration_0002"
down_revision = "registration_0001"
branch_labels = None
depends_on = None
legacy_id = "registration.0002_enquiries_audit"  # its id in the scheme before Alembic (adopting old databases)


def upgrade():
    with op.batch_alter_table("applications") as batch:
        batch.add_column(sa.Column("open_enquiry", sa.String(length=100), nullable=True))
    op.create_table(
        "audit_trail",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.String(length=100), nullable=True),
        sa.Column("staff_id", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("application_id", sa.String(length=200), nullable=True),
        sa.Column("what", sa.String(length=300), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_registration_audit_session", "audit_trail", ["session_id", "at"],
                    unique=False)
    op.create_index("ix_registration_audit_staff", "audit_trail", ["staff_id", "at"],
                    unique=False)
