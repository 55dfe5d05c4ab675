"""Verification read model: eligibility_rules (报考条件, every version loaded per exam year).

Revision verification_0003 (before Alembic: verification.0003_eligibility_rules).
Frozen: written out column by column, never from today's table objects.
"""

import sqlalchemy as sa
from alembic import op

revision = "verification_0003"
down_revision = "verification_0002"
branch_labels = None
depends_on = None
legacy_id = "verification.0003_eligibility_rules"  # its id in the scheme before Alembic (adopting old databases)


def upgrade():
    op.create_table('eligibility_rules',
    sa.Column('exam_year', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('yaml', sa.Text(), nullable=False),
    sa.Column('loaded_by', sa.String(length=100), nullable=False),
    sa.Column('loaded_at', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('exam_year', 'version')
    )
