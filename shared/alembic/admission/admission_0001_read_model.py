"""Admission read model: sessions, tickets, attendance, deadlines.

Revision admission_0001 (before Alembic: admission.0001_read_model).
Frozen: written out column by column, never from today's table objects.
"""

import sqlalchemy as sa
from alembic import op

revision = "admission_0001"
down_revision = None
branch_labels = ("admission",)
depends_on = None
legacy_id = "admission.0001_read_model"  # its id in the scheme before Alembic (adopting old databases)


def upgrade():
    op.create_table('sessions',
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('session_id')
    )
    op.create_table('tickets',
    sa.Column('application_id', sa.String(length=200), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('level', sa.String(length=4), nullable=False),
    sa.Column('subjects', sa.JSON(), nullable=False),
    sa.Column('exemption', sa.JSON(), nullable=True),
    sa.Column('registration_point', sa.String(length=20), nullable=False),
    sa.Column('candidate', sa.JSON(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=True),
    sa.Column('ticket_number', sa.String(length=100), nullable=True),
    sa.Column('venue', sa.String(length=100), nullable=True),
    sa.Column('room', sa.String(length=100), nullable=True),
    sa.Column('seat', sa.Integer(), nullable=True),
    sa.Column('printed_count', sa.Integer(), nullable=False),
    sa.Column('forfeited', sa.Boolean(), nullable=False),
    sa.Column('cancelled', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('confirmed_at', sa.String(length=40), nullable=False),
    sa.Column('updated_at', sa.String(length=40), nullable=True),
    sa.PrimaryKeyConstraint('application_id')
    )
    op.create_index('ix_tickets_account', 'tickets', ['account_id', 'session_id'], unique=False)
    op.create_index('ix_tickets_number', 'tickets', ['ticket_number'], unique=False)
    op.create_index('ix_tickets_room', 'tickets', ['session_id', 'venue', 'room'], unique=False)
    op.create_index('ix_tickets_session_status', 'tickets', ['session_id', 'status'], unique=False)
    op.create_table('attendance',
    sa.Column('application_id', sa.String(length=200), nullable=False),
    sa.Column('subject', sa.String(length=100), nullable=False),
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('ticket_number', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('at', sa.String(length=40), nullable=True),
    sa.Column('staff', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('application_id', 'subject')
    )
    op.create_index('ix_attendance_session', 'attendance', ['session_id', 'subject', 'status'], unique=False)
    op.create_table('deadlines',
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('at', sa.String(length=40), nullable=True),
    sa.PrimaryKeyConstraint('session_id', 'name')
    )
