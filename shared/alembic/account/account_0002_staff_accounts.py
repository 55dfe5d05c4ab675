"""Account read model: staff_accounts.

Revision account_0002 (before Alembic: account.0002_staff_accounts).
Frozen: written out column by column, never from today's table objects.
"""

import sqlalchemy as sa
from alembic import op

revision = "account_0002"
down_revision = "account_0001"
branch_labels = None
depends_on = None
legacy_id = "account.0002_staff_accounts"  # its id in the scheme before Alembic (adopting old databases)


def upgrade():
    op.create_table('staff_accounts',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('username_key', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('registration_point', sa.String(length=20), nullable=True),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.String(length=40), nullable=False),
    sa.Column('updated_at', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('account_id')
    )
    op.create_index('ix_staff_accounts_username_key', 'staff_accounts', ['username_key'], unique=False)
