"""Web interface: operator (RA staff) accounts, the dashboard's index

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

Issue 14: ``operators`` for the /staff/ console (``agency operators create``),
``accounts.disabled_at`` set by staff (a disabled account cannot sign in or
deposit), and an index on submissions by account, status and time for the
registrant dashboard's in-process and queued lists.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('operators',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.create_index('ix_submissions_account_status_received', ['account_id', 'status', 'received_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_index('ix_submissions_account_status_received')
    op.drop_table('operators')
