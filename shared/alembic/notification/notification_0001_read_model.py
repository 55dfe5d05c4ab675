"""Notification read model: recipients, sessions, tickets, notices, messages, deliveries.

Revision notification_0001 (before Alembic: notification.0001_read_model).
Frozen: written out column by column, never from today's table objects.
"""

import sqlalchemy as sa
from alembic import op

revision = "notification_0001"
down_revision = None
branch_labels = ("notification",)
depends_on = None
legacy_id = "notification.0001_read_model"  # its id in the scheme before Alembic (adopting old databases)


def upgrade():
    op.create_table('recipients',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('mobile', sa.String(length=20), nullable=False),
    sa.Column('registered_at', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('account_id')
    )
    op.create_table('sessions',
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('upstream_position', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('session_id')
    )
    op.create_table('tickets',
    sa.Column('ticket_number', sa.String(length=100), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('application_id', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('upstream_position', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('ticket_number')
    )
    op.create_index('ix_tickets_account', 'tickets', ['account_id', 'session_id'], unique=False)
    op.create_index('ix_tickets_session', 'tickets', ['session_id', 'status'], unique=False)
    op.create_table('notices',
    sa.Column('notice_id', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=50), nullable=False),
    sa.Column('template', sa.String(length=50), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('application_id', sa.String(length=200), nullable=True),
    sa.Column('window', sa.String(length=30), nullable=False),
    sa.Column('due_at', sa.String(length=40), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('message_id', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('updated_at', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('notice_id')
    )
    op.create_index('ix_notices_due', 'notices', ['status', 'due_at'], unique=False)
    op.create_index('ix_notices_session', 'notices', ['session_id', 'status'], unique=False)
    op.create_table('messages',
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('session_id', sa.String(length=100), nullable=True),
    sa.Column('template', sa.String(length=50), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.String(length=40), nullable=False),
    sa.Column('read', sa.Boolean(), nullable=False),
    sa.Column('read_at', sa.String(length=40), nullable=True),
    sa.PrimaryKeyConstraint('message_id')
    )
    op.create_index('ix_messages_account', 'messages', ['account_id', 'created_at'], unique=False)
    op.create_table('deliveries',
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('session_id', sa.String(length=100), nullable=True),
    sa.Column('template', sa.String(length=50), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('next_attempt_at', sa.String(length=40), nullable=True),
    sa.Column('queued_at', sa.String(length=40), nullable=False),
    sa.Column('updated_at', sa.String(length=40), nullable=False),
    sa.Column('sent_at', sa.String(length=40), nullable=True),
    sa.Column('provider_id', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('message_id')
    )
    op.create_index('ix_deliveries_due', 'deliveries', ['status', 'next_attempt_at'], unique=False)
