"""Certificate read model: sessions, certificates, downloads, pickup_notices, collections.

Revision certificate_0001 (before Alembic: certificate.0001_read_model).
Frozen: written out column by column, never from today's table objects.
"""

import sqlalchemy as sa
from alembic import op

revision = "certificate_0001"
down_revision = None
branch_labels = ("certificate",)
depends_on = None
legacy_id = "certificate.0001_read_model"  # its id in the scheme before Alembic (adopting old databases)


def upgrade():
    op.create_table('sessions',
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('session_id')
    )
    op.create_table('certificates',
    sa.Column('certificate_number', sa.String(length=100), nullable=False),
    sa.Column('qualification_id', sa.String(length=100), nullable=False),
    sa.Column('account_id', sa.String(length=100), nullable=False),
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('exam_year', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=4), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('status_index', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('issued_at', sa.String(length=40), nullable=False),
    sa.Column('revoked_at', sa.String(length=40), nullable=True),
    sa.Column('revoke_reason', sa.String(length=600), nullable=True),
    sa.Column('collected', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('certificate_number'),
    sa.UniqueConstraint('status_index'),
    sa.UniqueConstraint('token')
    )
    op.create_index('ix_certificates_account', 'certificates', ['account_id'], unique=False)
    op.create_index('ix_certificates_qualification', 'certificates', ['qualification_id'], unique=False)
    op.create_index('ix_certificates_session', 'certificates', ['session_id', 'status'], unique=False)
    op.create_table('downloads',
    sa.Column('stream_id', sa.String(length=200), nullable=False),
    sa.Column('stream_version', sa.Integer(), nullable=False),
    sa.Column('certificate_number', sa.String(length=100), nullable=False),
    sa.Column('format', sa.String(length=4), nullable=False),
    sa.Column('downloaded_at', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('stream_id', 'stream_version')
    )
    op.create_index('ix_downloads_certificate', 'downloads', ['certificate_number'], unique=False)
    op.create_table('pickup_notices',
    sa.Column('notice_id', sa.String(length=100), nullable=False),
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('place', sa.String(length=500), nullable=False),
    sa.Column('start', sa.String(length=40), nullable=False),
    sa.Column('end', sa.String(length=40), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('noticed_at', sa.String(length=40), nullable=False),
    sa.Column('noticed_by', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('notice_id')
    )
    op.create_index('ix_pickup_notices_session', 'pickup_notices', ['session_id'], unique=False)
    op.create_table('collections',
    sa.Column('certificate_number', sa.String(length=100), nullable=False),
    sa.Column('account_id', sa.String(length=100), nullable=False),
    sa.Column('collected_by', sa.String(length=100), nullable=False),
    sa.Column('by_proxy', sa.Boolean(), nullable=False),
    sa.Column('staff', sa.String(length=100), nullable=False),
    sa.Column('collected_at', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('certificate_number')
    )
