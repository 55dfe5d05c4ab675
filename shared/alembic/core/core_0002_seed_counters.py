"""The one-row counters start at 0: the log head and the relay's published position.

Revision core_0002 (before Alembic: core.0002_seed_counters).
Frozen: written out column by column, never from today's table objects.
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0002"
down_revision = "core_0001"
branch_labels = None
depends_on = None
legacy_id = "core.0002_seed_counters"  # its id in the scheme before Alembic (adopting old databases)


def upgrade():
    for name in ("log_head", "relay_state"):
        counter = sa.table(name, sa.column("id", sa.Integer), sa.column("position", sa.Integer))
        op.bulk_insert(counter, [{"id": 1, "position": 0}])
