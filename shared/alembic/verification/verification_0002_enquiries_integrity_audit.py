"""Verification read model: enquiries, integrity_records, audit_trail.

Revision verification_0002 (before Alembic: verification.0002_enquiries_integrity_audit).
Frozen: written out column by column, never from today's table objects.
"""

import sqlalchemy as sa
from alembic import op

revision = "verification_0002"
down_revision = "verification_0001"
branch_labels = None
depends_on = None
legacy_id = "verification.0002_enquiries_integrity_audit"  # its id in the scheme before Alembic (adopting old databases)


def upgrade():
    op.create_table('enquiries',
    sa.Column('enquiry_id', sa.String(length=100), nullable=False),
    sa.Column('application_id', sa.String(length=200), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('registration_point', sa.String(length=20), nullable=False),
    sa.Column('about', sa.String(length=40), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('raised_at', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.Column('staff', sa.String(length=100), nullable=True),
    sa.Column('reopened', sa.Boolean(), nullable=True),
    sa.Column('answered_at', sa.String(length=40), nullable=True),
    sa.Column('closed_reason', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('enquiry_id')
    )
    op.create_index('ix_enquiries_candidate', 'enquiries', ['account_id', 'session_id'], unique=False)
    op.create_index('ix_enquiries_queue', 'enquiries', ['registration_point', 'status', 'raised_at'], unique=False)
    op.create_table('integrity_records',
    sa.Column('record_id', sa.String(length=100), nullable=False),
    sa.Column('id_type', sa.String(length=32), nullable=False),
    sa.Column('id_number', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=300), nullable=False),
    sa.Column('written_at', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('record_id')
    )
    op.create_index('ix_integrity_person', 'integrity_records', ['id_type', 'id_number'], unique=False)
    op.create_table('audit_trail',
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('at', sa.String(length=40), nullable=False),
    sa.Column('session_id', sa.String(length=100), nullable=True),
    sa.Column('staff_id', sa.String(length=100), nullable=False),
    sa.Column('registration_point', sa.String(length=20), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('application_id', sa.String(length=200), nullable=True),
    sa.Column('what', sa.String(length=300), nullable=False),
    sa.Column('why', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    op.create_index('ix_audit_session', 'audit_trail', ['session_id', 'at'], unique=False)
    op.create_index('ix_audit_staff', 'audit_trail', ['staff_id', 'at'], unique=False)
