"""A partial index of the unfinished submissions, for the worker's claim

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 04:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

UNFINISHED = "status IN ('queued', 'processing')"


def upgrade() -> None:
    op.create_index('ix_submissions_unfinished', 'submissions', ['status'], unique=False,
                    sqlite_where=sa.text(UNFINISHED), postgresql_where=sa.text(UNFINISHED))


def downgrade() -> None:
    op.drop_index('ix_submissions_unfinished', table_name='submissions',
                  sqlite_where=sa.text(UNFINISHED), postgresql_where=sa.text(UNFINISHED))
