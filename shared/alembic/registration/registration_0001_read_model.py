"""Registration read model: sessions, session_windows, candidates, applications.

Revision registration_0001 (before Alembic: registration.0001_read_model).
Frozen: written out column by column, never from today's table objects.
"""

import sqlalchemy as sa
from alembic import op

revision = "registration_0001"
down_revision = None
branch_labels = ("registration",)
depends_on = None
legacy_id = "registration.0001_read_model"  # its id in the scheme before Alembic (adopting old databases)


def upgrade():
    op.create_table('sessions',
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('exam_year', sa.Integer(), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('scheduled_at', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('session_id')
    )
    op.create_table('session_windows',
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('window', sa.String(length=30), nullable=False),
    sa.Column('start', sa.String(length=40), nullable=False),
    sa.Column('end', sa.String(length=40), nullable=False),
    sa.Column('amended_reason', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('session_id', 'window')
    )
    op.create_table('candidates',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('completeness', sa.Integer(), nullable=False),
    sa.Column('complete', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('account_id')
    )
    op.create_table('applications',
    sa.Column('application_id', sa.String(length=200), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=4), nullable=False),
    sa.Column('subjects', sa.JSON(), nullable=False),
    sa.Column('exemption', sa.JSON(), nullable=True),
    sa.Column('registration_point', sa.String(length=20), nullable=False),
    sa.Column('commitment', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('proof_cause', sa.String(length=40), nullable=True),
    sa.Column('submitted_at', sa.String(length=40), nullable=False),
    sa.Column('updated_at', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('application_id')
    )
    op.create_index('ix_applications_account', 'applications', ['account_id'], unique=False)
    op.create_index('ix_applications_session_status', 'applications', ['session_id', 'status'], unique=False)
