"""A partial index of the HS_ALIAS values (index 3), joined by every depositor report

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 19:50:00

The depositor report names each DOI's alias target: a join of the prefix's
handles to their values at index 3. Without an index of those few values
PostgreSQL's plan read every value of every handle to find them (0.66 s at
10,000,000 DOIs before the first row, growing with the agency); with it, the
aliases are one small range. SQLite probes each handle's values by primary key
and does not need it, but keeps the same schema (an index of the aliases
alone costs nothing else).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

ALIASES = "idx = 3"  # agency.handles.store.ALIAS_INDEX


def upgrade() -> None:
    op.create_index('ix_handle_values_alias', 'handle_values', ['handle_key'], unique=False,
                    sqlite_where=sa.text(ALIASES), postgresql_where=sa.text(ALIASES))


def downgrade() -> None:
    op.drop_index('ix_handle_values_alias', table_name='handle_values',
                  sqlite_where=sa.text(ALIASES), postgresql_where=sa.text(ALIASES))
