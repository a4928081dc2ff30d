"""The matcher's fallback indexes carry the numbers that rule candidates out (volume, year)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 07:30:00
"""

from __future__ import annotations

from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_mdrec_page_vol_year', 'metadata_records', ['first_page_key', 'volume_key', 'year'],
                    unique=False)
    op.drop_index('ix_mdrec_page_vol', table_name='metadata_records')
    op.create_index('ix_mdrec_author_year_page_vol', 'metadata_records',
                    ['first_author_key', 'year', 'first_page_key', 'volume_key'], unique=False)
    op.drop_index('ix_mdrec_author_year_page', table_name='metadata_records')


def downgrade() -> None:
    op.create_index('ix_mdrec_author_year_page', 'metadata_records', ['first_author_key', 'year', 'first_page_key'],
                    unique=False)
    op.drop_index('ix_mdrec_author_year_page_vol', table_name='metadata_records')
    op.create_index('ix_mdrec_page_vol', 'metadata_records', ['first_page_key', 'volume_key'], unique=False)
    op.drop_index('ix_mdrec_page_vol_year', table_name='metadata_records')
