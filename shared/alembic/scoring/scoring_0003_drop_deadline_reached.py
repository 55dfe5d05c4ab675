"""Scoring read model: ``sessions.deadline_reached`` goes. Whether the scores window's
start was handled is the deadline mechanism's record (``shared.deadlines``: the
``DeadlineReached`` event on its stream), which nothing read this column for.

Revision scoring_0003. Frozen: written out, never from today's table objects.
"""

from alembic import op

revision = "scoring_0003"
down_revision = "scoring_0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sessions') as batch:
        batch.drop_column('deadline_reached')
