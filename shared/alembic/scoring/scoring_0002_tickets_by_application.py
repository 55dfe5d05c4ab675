"""Scoring read model: tickets and attendance keyed by the application
(``<session>.<account>``), not by ticket number (two sessions of one exam year once shared
numbers; a score file names tickets by number within their session).

Revision scoring_0002 (before Alembic: scoring.0002_tickets_by_application).
Frozen: written out column by column, never from today's table objects.

Both tables are dropped and made anew, empty; ``rebuild = True``: the service then
rebuilds its read model from the log (``EventStore.migrate``), which refills them.
"""

import sqlalchemy as sa
from alembic import op

revision = "scoring_0002"
down_revision = "scoring_0001"
branch_labels = None
depends_on = None
legacy_id = "scoring.0002_tickets_by_application"  # its id in the scheme before Alembic (adopting old databases)
rebuild = True  # the read model is rebuilt from the log once this revision is applied


def upgrade():
    op.drop_table('attendance')
    op.drop_table('tickets')
    op.create_table('tickets',
    sa.Column('application_id', sa.String(length=200), nullable=False),
    sa.Column('ticket_number', sa.String(length=100), nullable=False),
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('account_id', sa.String(length=100), nullable=False),
    sa.Column('level', sa.String(length=4), nullable=False),
    sa.Column('subjects', sa.JSON(), nullable=False),
    sa.Column('exemption', sa.JSON(), nullable=True),
    sa.Column('candidate', sa.JSON(), nullable=False),
    sa.Column('exam_year', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('application_id')
    )
    op.create_index('ix_tickets_account', 'tickets', ['account_id', 'session_id'], unique=False)
    op.create_index('ix_tickets_session', 'tickets', ['session_id', 'ticket_number'], unique=False)
    op.create_table('attendance',
    sa.Column('application_id', sa.String(length=200), nullable=False),
    sa.Column('subject', sa.String(length=100), nullable=False),
    sa.Column('ticket_number', sa.String(length=100), nullable=False),
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.PrimaryKeyConstraint('application_id', 'subject')
    )
    op.create_index('ix_attendance_session', 'attendance', ['session_id', 'status'], unique=False)
