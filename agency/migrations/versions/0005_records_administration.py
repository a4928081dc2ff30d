"""Records administration: aliases, withdrawals, version resets, resource parts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 02:02:21.858378
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Issue 13: aliases (alias_links, beside HS_ALIAS values), withdrawals, version resets, resource parts.
    op.create_table('metadata_resources',
    sa.Column('doi_key', sa.String(length=2048), nullable=False),
    sa.Column('part', sa.String(length=32), nullable=False),
    sa.Column('doi', sa.String(length=2048), nullable=False),
    sa.Column('xml', sa.Text(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=True),
    sa.Column('batch_folder', sa.String(length=1024), nullable=False),
    sa.Column('indexed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('doi_key', 'part')
    )
    op.create_table('alias_links',
    sa.Column('alias_key', sa.String(length=2048), nullable=False),
    sa.Column('target', sa.String(length=2048), nullable=False),
    sa.ForeignKeyConstraint(['alias_key'], ['handles.key'], ),
    sa.PrimaryKeyConstraint('alias_key')
    )
    op.create_table('version_resets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('handle_key', sa.String(length=2048), nullable=False),
    sa.Column('from_version', sa.String(length=19), nullable=False),
    sa.Column('to_version', sa.String(length=19), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('reset_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('noted_submission_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['handle_key'], ['handles.key'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('version_resets', schema=None) as batch_op:
        batch_op.create_index('ix_version_resets_pending', ['noted_submission_id', 'handle_key'], unique=False)

    op.create_table('withdrawals',
    sa.Column('handle_key', sa.String(length=2048), nullable=False),
    sa.Column('doi', sa.String(length=2048), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('previous_url', sa.Text(), nullable=True),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reinstated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['handle_key'], ['handles.key'], ),
    sa.PrimaryKeyConstraint('handle_key')
    )
    with op.batch_alter_table('withdrawals', schema=None) as batch_op:
        batch_op.create_index('ix_withdrawals_active', ['active', 'handle_key'], unique=False)

    # ### end Alembic commands ###


def downgrade() -> None:
    # Issue 13: aliases (alias_links, beside HS_ALIAS values), withdrawals, version resets, resource parts.
    with op.batch_alter_table('withdrawals', schema=None) as batch_op:
        batch_op.drop_index('ix_withdrawals_active')

    op.drop_table('withdrawals')
    with op.batch_alter_table('version_resets', schema=None) as batch_op:
        batch_op.drop_index('ix_version_resets_pending')

    op.drop_table('version_resets')
    op.drop_table('alias_links')
    op.drop_table('metadata_resources')
    # ### end Alembic commands ###
