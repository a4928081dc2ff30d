"""Submissions that keep failing: attempts, next try, reason (issue 10)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

A slice that raises is retried after a back-off; after AGENCY_WORKER_MAX_ATTEMPTS
the submission stops as 'failed' with its reason (agency.runtime.worker).
DOI keys now fold ASCII letters only: stored keys of non-ASCII DOIs are moved by
`agency handles rekey` (agency.handles.store.rekey_stored_names), not here, so an
upgrade never rewrites the handle store behind the operator's back.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('submissions') as batch:
        batch.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('retry_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('failure_reason', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('submissions') as batch:
        batch.drop_column('failure_reason')
        batch.drop_column('retry_at')
        batch.drop_column('attempts')
