"""sharing: share links, shared folders and their members, mount points, version authors

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 10:30:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('share_links',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('public_id', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('namespace_id', sa.Integer(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('show_owner', sa.Boolean(), server_default=sa.text('(false)'), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=True),
    sa.Column('max_downloads', sa.Integer(), nullable=True),
    sa.Column('downloads', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('last_used_at', sa.Float(), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('revoked_at', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['namespace_id'], ['namespaces.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash'),
    sa.UniqueConstraint('public_id')
    )
    with op.batch_alter_table('share_links', schema=None) as batch_op:
        batch_op.create_index('ix_share_links_owner', ['owner_id'], unique=False)
        batch_op.create_index('ix_share_links_namespace', ['namespace_id'], unique=False)

    op.create_table('shared_folders',
    sa.Column('namespace_id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['namespace_id'], ['namespaces.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('namespace_id')
    )
    op.create_table('share_members',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('namespace_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=8), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('invited_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('accepted_at', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['namespace_id'], ['shared_folders.namespace_id'],
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('share_members', schema=None) as batch_op:
        batch_op.create_index('ix_share_members_folder_user', ['namespace_id', 'user_id'],
                              unique=True)
        batch_op.create_index('ix_share_members_user', ['user_id'], unique=False)

    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mount_namespace_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_entries_mount', ['mount_namespace_id'], unique=False)
    with op.batch_alter_table('versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('author_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('versions', schema=None) as batch_op:
        batch_op.drop_column('author_id')
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.drop_index('ix_entries_mount')
        batch_op.drop_column('mount_namespace_id')
    with op.batch_alter_table('share_members', schema=None) as batch_op:
        batch_op.drop_index('ix_share_members_user')
        batch_op.drop_index('ix_share_members_folder_user')
    op.drop_table('share_members')
    op.drop_table('shared_folders')
    with op.batch_alter_table('share_links', schema=None) as batch_op:
        batch_op.drop_index('ix_share_links_namespace')
        batch_op.drop_index('ix_share_links_owner')
    op.drop_table('share_links')
