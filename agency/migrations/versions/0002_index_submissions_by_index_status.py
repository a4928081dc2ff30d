"""Index submissions by index status

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

The scheduler looks every few seconds for completed deposits whose metadata is
not indexed yet (agency.metadata.load.MddbLoader.run_pending).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_submissions_index_status', 'submissions', ['index_status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_submissions_index_status', table_name='submissions')
