"""Account read model: accounts, profile_sections.

Revision account_0001 (before Alembic: account.0001_read_model).
Frozen: written out column by column, never from today's table objects.
"""

import sqlalchemy as sa
from alembic import op

revision = "account_0001"
down_revision = None
branch_labels = ("account",)
depends_on = None
legacy_id = "account.0001_read_model"  # its id in the scheme before Alembic (adopting old databases)


def upgrade():
    op.create_table('accounts',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('username_key', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('id_type', sa.String(length=32), nullable=False),
    sa.Column('id_number', sa.String(length=32), nullable=False),
    sa.Column('mobile', sa.String(length=20), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('completeness', sa.Integer(), nullable=False),
    sa.Column('complete', sa.Boolean(), nullable=False),
    sa.Column('missing', sa.JSON(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.String(length=40), nullable=True),
    sa.Column('registered_at', sa.String(length=40), nullable=False),
    sa.Column('updated_at', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('account_id')
    )
    op.create_index('ix_accounts_identity', 'accounts', ['id_type', 'id_number'], unique=False)
    op.create_index('ix_accounts_mobile', 'accounts', ['mobile'], unique=False)
    op.create_index('ix_accounts_username_key', 'accounts', ['username_key'], unique=False)
    op.create_table('profile_sections',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('section', sa.String(length=20), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'section')
    )
