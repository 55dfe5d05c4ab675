"""Admission read model: ticket_sequence (the one ticket sequence every session shares).

Revision admission_0002 (before Alembic: admission.0002_ticket_sequence).
Frozen: written out column by column, never from today's table objects.
"""

import sqlalchemy as sa
from alembic import op

revision = "admission_0002"
down_revision = "admission_0001"
branch_labels = None
depends_on = None
legacy_id = "admission.0002_ticket_sequence"  # its id in the scheme before Alembic (adopting old databases)


def upgrade():
    op.create_table('ticket_sequence',
    sa.Column('name', sa.String(length=20), nullable=False),
    sa.Column('next_seq', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
