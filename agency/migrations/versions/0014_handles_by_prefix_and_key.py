"""Handles indexed by prefix and key, in place of prefix alone: prefix listings page through the index

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 10:50:00
"""

from __future__ import annotations

from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_handles_prefix_key', 'handles', ['prefix', 'key'], unique=False)
    op.drop_index('ix_handles_prefix', table_name='handles')


def downgrade() -> None:
    op.create_index('ix_handles_prefix', 'handles', ['prefix'], unique=False)
    op.drop_index('ix_handles_prefix_key', table_name='handles')
