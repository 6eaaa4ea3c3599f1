"""metadata usage per namespace: entries and chunk references, for the metadata quota

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 11:00:00

Each namespace counts its entries (live and in the trash) and the chunk references of its
versions, so the metadata quota is checked without counting rows on every change.
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('namespaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('entry_count', sa.BigInteger(), nullable=False,
                                      server_default=sa.text('0')))
        batch_op.add_column(sa.Column('chunk_refs', sa.BigInteger(), nullable=False,
                                      server_default=sa.text('0')))
    op.execute(
        "UPDATE namespaces SET entry_count = (SELECT count(*) FROM entries "
        "WHERE entries.namespace_id = namespaces.id)")
    op.execute(
        "UPDATE namespaces SET chunk_refs = (SELECT count(*) FROM version_chunks "
        "JOIN versions ON versions.id = version_chunks.version_id "
        "JOIN entries ON entries.id = versions.entry_id "
        "WHERE entries.namespace_id = namespaces.id)")


def downgrade() -> None:
    with op.batch_alter_table('namespaces', schema=None) as batch_op:
        batch_op.drop_column('chunk_refs')
        batch_op.drop_column('entry_count')
