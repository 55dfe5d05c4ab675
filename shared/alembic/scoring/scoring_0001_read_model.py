"""Scoring read model: sessions, tickets, attendance, imports, results, qualifications.

Revision scoring_0001 (before Alembic: scoring.0001_read_model).
Frozen: written out column by column, never from today's table objects.
"""

import sqlalchemy as sa
from alembic import op

revision = "scoring_0001"
down_revision = None
branch_labels = ("scoring",)
depends_on = None
legacy_id = "scoring.0001_read_model"  # its id in the scheme before Alembic (adopting old databases)


def upgrade():
    op.create_table('sessions',
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('exam_year', sa.Integer(), nullable=False),
    sa.Column('current_import', sa.String(length=100), nullable=True),
    sa.Column('imported_rows', sa.Integer(), nullable=True),
    sa.Column('import_candidates', sa.Integer(), nullable=True),
    sa.Column('published_at', sa.String(length=40), nullable=True),
    sa.Column('deadline_reached', sa.Boolean(), nullable=True),
    sa.PrimaryKeyConstraint('session_id')
    )
    op.create_table('tickets',
    sa.Column('ticket_number', sa.String(length=100), nullable=False),
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('account_id', sa.String(length=100), nullable=False),
    sa.Column('application_id', sa.String(length=100), nullable=False),
    sa.Column('level', sa.String(length=4), nullable=False),
    sa.Column('subjects', sa.JSON(), nullable=False),
    sa.Column('exemption', sa.JSON(), nullable=True),
    sa.Column('candidate', sa.JSON(), nullable=False),
    sa.Column('exam_year', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('ticket_number')
    )
    op.create_index('ix_tickets_account', 'tickets', ['account_id', 'session_id'], unique=False)
    op.create_index('ix_tickets_application', 'tickets', ['application_id'], unique=False)
    op.create_index('ix_tickets_session', 'tickets', ['session_id'], unique=False)
    op.create_table('attendance',
    sa.Column('ticket_number', sa.String(length=100), nullable=False),
    sa.Column('subject', sa.String(length=100), nullable=False),
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.PrimaryKeyConstraint('ticket_number', 'subject')
    )
    op.create_index('ix_attendance_session', 'attendance', ['session_id', 'status'], unique=False)
    op.create_table('imports',
    sa.Column('import_id', sa.String(length=100), nullable=False),
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('candidates', sa.Integer(), nullable=False),
    sa.Column('absent_rows', sa.Integer(), nullable=False),
    sa.Column('missing', sa.Integer(), nullable=False),
    sa.Column('imported_by', sa.String(length=100), nullable=False),
    sa.Column('imported_at', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.PrimaryKeyConstraint('import_id')
    )
    op.create_index('ix_imports_session', 'imports', ['session_id'], unique=False)
    op.create_table('results',
    sa.Column('account_id', sa.String(length=100), nullable=False),
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('application_id', sa.String(length=100), nullable=False),
    sa.Column('ticket_number', sa.String(length=100), nullable=True),
    sa.Column('exam_year', sa.Integer(), nullable=True),
    sa.Column('level', sa.String(length=4), nullable=True),
    sa.Column('subjects', sa.JSON(), nullable=True),
    sa.Column('passed_count', sa.Integer(), nullable=True),
    sa.Column('published_at', sa.String(length=40), nullable=True),
    sa.Column('voided', sa.Boolean(), nullable=False),
    sa.Column('void_reason', sa.String(length=600), nullable=True),
    sa.PrimaryKeyConstraint('account_id', 'session_id')
    )
    op.create_index('ix_results_session', 'results', ['session_id'], unique=False)
    op.create_table('qualifications',
    sa.Column('qualification_id', sa.String(length=120), nullable=False),
    sa.Column('account_id', sa.String(length=100), nullable=False),
    sa.Column('level', sa.String(length=4), nullable=False),
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('exam_year', sa.Integer(), nullable=False),
    sa.Column('subjects', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('attained_at', sa.String(length=40), nullable=True),
    sa.Column('withdrawn_reason', sa.String(length=700), nullable=True),
    sa.PrimaryKeyConstraint('qualification_id')
    )
    op.create_index('ix_qualifications_account', 'qualifications', ['account_id', 'level'], unique=False)
    op.create_index('ix_qualifications_session', 'qualifications', ['session_id'], unique=False)
