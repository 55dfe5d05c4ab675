"""Notification read model: tickets keyed by the application (``<session>.<account>``), not
by ticket number (two sessions of one exam year once shared numbers).

Revision notification_0002 (before Alembic: notification.0002_tickets_by_application).
Frozen: written out column by column, never from today's table objects.

The table is dropped and made anew, empty; ``rebuild = True``: the service then rebuilds
its read model from the log (``EventStore.migrate``), which refills it under the new key.
"""

import sqlalchemy as sa
from alembic import op

revision = "notification_0002"
down_revision = "notification_0001"
branch_labels = None
depends_on = None
legacy_id = "notification.0002_tickets_by_application"  # its id in the scheme before Alembic (adopting old databases)
rebuild = True  # the read model is rebuilt from the log once this revision is applied


def upgrade():
    op.drop_table('tickets')
    op.create_table('tickets',
    sa.Column('application_id', sa.String(length=200), nullable=False),
    sa.Column('ticket_number', sa.String(length=100), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('upstream_position', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('application_id')
    )
    op.create_index('ix_tickets_account', 'tickets', ['account_id', 'session_id'], unique=False)
    op.create_index('ix_tickets_session', 'tickets', ['session_id', 'status'], unique=False)
