"""Failed logins are counted in the database, so every API replica throttles them together.

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'auth_failures',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_auth_failures_key_at', 'auth_failures', ['key', 'at'])
    op.create_index('ix_auth_failures_at', 'auth_failures', ['at'])


def downgrade() -> None:
    op.drop_index('ix_auth_failures_at', table_name='auth_failures')
    op.drop_index('ix_auth_failures_key_at', table_name='auth_failures')
    op.drop_table('auth_failures')
