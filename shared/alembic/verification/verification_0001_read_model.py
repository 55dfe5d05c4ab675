"""Verification read model: sessions, cases.

Revision verification_0001 (before Alembic: verification.0001_read_model).
Frozen: written out column by column, never from today's table objects.
"""

import sqlalchemy as sa
from alembic import op

revision = "verification_0001"
down_revision = None
branch_labels = ("verification",)
depends_on = None
legacy_id = "verification.0001_read_model"  # its id in the scheme before Alembic (adopting old databases)


def upgrade():
    op.create_table('sessions',
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('session_id')
    )
    op.create_table('cases',
    sa.Column('application_id', sa.String(length=200), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('registration_point', sa.String(length=20), nullable=False),
    sa.Column('level', sa.String(length=4), nullable=False),
    sa.Column('candidate_name', sa.String(length=100), nullable=False),
    sa.Column('commitment', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('proof_cause', sa.String(length=40), nullable=True),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('rule', sa.String(length=100), nullable=True),
    sa.Column('spot_checked', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('opened_at', sa.String(length=40), nullable=False),
    sa.Column('updated_at', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('application_id')
    )
    op.create_index('ix_cases_queue', 'cases', ['session_id', 'registration_point', 'status'], unique=False)
    op.create_index('ix_cases_status', 'cases', ['session_id', 'status'], unique=False)
