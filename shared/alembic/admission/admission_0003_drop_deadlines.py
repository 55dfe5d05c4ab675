"""Admission read model: the ``deadlines`` table goes. Which deadline effects ran is the
deadline mechanism's record (``shared.deadlines``: the ``DeadlineReached`` event on its
stream), which nothing read this table for.

Revision admission_0003. Frozen: written out, never from today's table objects.
"""

from alembic import op

revision = "admission_0003"
down_revision = "admission_0002"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_table('deadlines')
