"""timestamps in range: mtimes stored before they were checked (Infinity, 1e20) reset

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 10:40:00

The API now refuses client mtimes that are not finite or fall outside years 1-9999. Earlier
servers stored them, and every later listing or download of such a version failed (its
timestamp cannot be shown). Those versions and entries get their server-side creation
time instead. (On PostgreSQL NaN and Infinity sort above every number, so ``> max`` finds
them too; SQLite never stored NaN.)
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

MIN_TIMESTAMP = -62_135_596_800.0
MAX_TIMESTAMP = 253_402_300_799.0


def upgrade() -> None:
    bounds = {"lo": MIN_TIMESTAMP, "hi": MAX_TIMESTAMP}
    op.get_bind().execute(sa.text(
        "UPDATE versions SET mtime = created_at WHERE mtime > :hi OR mtime < :lo"), bounds)
    op.get_bind().execute(sa.text(
        "UPDATE entries SET modified = created_at WHERE modified > :hi OR modified < :lo"),
        bounds)


def downgrade() -> None:
    pass  # the out-of-range values are gone for good; nothing to put back
