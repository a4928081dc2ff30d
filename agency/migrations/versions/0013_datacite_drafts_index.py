"""A partial index of the DataCite MDS drafts, asked by every Crossref deposit chunk

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 07:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

DRAFTS = "state = 'draft'"


def upgrade() -> None:
    op.create_index('ix_datacite_drafts', 'datacite_dois', ['key'], unique=False,
                    sqlite_where=sa.text(DRAFTS), postgresql_where=sa.text(DRAFTS))


def downgrade() -> None:
    op.drop_index('ix_datacite_drafts', table_name='datacite_dois',
                  sqlite_where=sa.text(DRAFTS), postgresql_where=sa.text(DRAFTS))
