"""WebDAV locks in the metadata database, so every API replica sees the same locks

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 13:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'dav_locks',
        sa.Column('token', sa.String(length=100), nullable=False),
        sa.Column('namespace_id', sa.Integer(), nullable=False),
        sa.Column('root', sa.Text(), nullable=False),
        sa.Column('scope', sa.String(length=16), nullable=False),
        sa.Column('depth', sa.String(length=16), nullable=False),
        sa.Column('owner', sa.Text(), nullable=False),
        sa.Column('principal', sa.String(length=255), nullable=False),
        sa.Column('timeout', sa.Float(), nullable=False),
        sa.Column('expire', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['namespace_id'], ['namespaces.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('token'),
    )
    op.create_index('ix_dav_locks_root', 'dav_locks', ['namespace_id', 'root'])


def downgrade() -> None:
    op.drop_index('ix_dav_locks_root', table_name='dav_locks')
    op.drop_table('dav_locks')
