"""WebDAV: app passwords, dead properties, checksums of file contents

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('app_passwords',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('last_used_at', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('secret_hash')
    )
    op.create_index('ix_app_passwords_user_name', 'app_passwords', ['user_id', 'name'],
                    unique=True)
    op.create_table('dav_properties',
    sa.Column('namespace_id', sa.Integer(), nullable=False),
    sa.Column('path_key', sa.Text(), nullable=False),
    sa.Column('name', sa.String(length=512), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['namespace_id'], ['namespaces.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('namespace_id', 'path_key', 'name')
    )
    op.create_table('content_checksums',
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('sha1', sa.String(length=40), nullable=False),
    sa.Column('md5', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('content_hash')
    )


def downgrade() -> None:
    op.drop_table('content_checksums')
    op.drop_table('dav_properties')
    op.drop_index('ix_app_passwords_user_name', table_name='app_passwords')
    op.drop_table('app_passwords')
