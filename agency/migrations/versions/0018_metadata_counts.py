"""The number of indexed metadata records kept by triggers: the staff console's count without counting

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30 20:00:00

The staff console and ``agency mddb status`` show how many records the metadata
database holds. Counting them read every record's index entry on each page load:
0.15 s at 1,000,000 DOIs and 1.1-1.7 s at 10,000,000 on PostgreSQL, growing with the
agency. As migration 0016 does for each prefix's handles, triggers keep the
number as records are added and removed:

- PostgreSQL: a statement-level trigger adds one row per statement (+n inserted,
  -n deleted) to ``metadata_counts``; readers sum them and
  ``agency.metadata.record_count`` folds them into one.
- SQLite (one writer at a time): a row trigger keeps one row.

A record replaced by a newer deposit is an update, not an insert: it is not counted twice.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

POSTGRESQL_UP = (
    """CREATE OR REPLACE FUNCTION metadata_counts_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO metadata_counts (records) SELECT count(*) FROM added HAVING count(*) > 0;
    RETURN NULL;
END $$""",
    """CREATE OR REPLACE FUNCTION metadata_counts_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO metadata_counts (records) SELECT -count(*) FROM removed HAVING count(*) > 0;
    RETURN NULL;
END $$""",
    """CREATE OR REPLACE FUNCTION metadata_counts_emptied() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM metadata_counts;
    RETURN NULL;
END $$""",
    "CREATE TRIGGER metadata_counted_on_insert AFTER INSERT ON metadata_records REFERENCING NEW TABLE AS added "
    "FOR EACH STATEMENT EXECUTE FUNCTION metadata_counts_added()",
    "CREATE TRIGGER metadata_counted_on_delete AFTER DELETE ON metadata_records REFERENCING OLD TABLE AS removed "
    "FOR EACH STATEMENT EXECUTE FUNCTION metadata_counts_removed()",
    "CREATE TRIGGER metadata_counted_on_truncate AFTER TRUNCATE ON metadata_records "
    "FOR EACH STATEMENT EXECUTE FUNCTION metadata_counts_emptied()",
)
POSTGRESQL_DOWN = (
    "DROP TRIGGER metadata_counted_on_truncate ON metadata_records",
    "DROP TRIGGER metadata_counted_on_delete ON metadata_records",
    "DROP TRIGGER metadata_counted_on_insert ON metadata_records",
    "DROP FUNCTION metadata_counts_emptied()",
    "DROP FUNCTION metadata_counts_removed()",
    "DROP FUNCTION metadata_counts_added()",
)

# The one row changed, or made when there was none (changes() in a trigger counts the rows of the trigger's
# previous statement).
SQLITE_UP = (
    "CREATE TRIGGER metadata_counted_on_insert AFTER INSERT ON metadata_records BEGIN\n"
    "    UPDATE metadata_counts SET records = records + 1;\n"
    "    INSERT INTO metadata_counts (records) SELECT 1 WHERE changes() = 0;\nEND",
    "CREATE TRIGGER metadata_counted_on_delete AFTER DELETE ON metadata_records BEGIN\n"
    "    UPDATE metadata_counts SET records = records - 1;\nEND",
)
SQLITE_DOWN = (
    "DROP TRIGGER metadata_counted_on_delete",
    "DROP TRIGGER metadata_counted_on_insert",
)


def upgrade() -> None:
    op.create_table(
        'metadata_counts',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), primary_key=True,
                  autoincrement=True),
        sa.Column('records', sa.BigInteger(), nullable=False),
    )
    for statement in _dialect(POSTGRESQL_UP, SQLITE_UP):
        op.execute(statement)
    # Counted after the triggers exist (creating one waits for writes in flight and holds new ones off until this
    # transaction ends), so every record is counted once, by this statement or by a trigger.
    op.execute("INSERT INTO metadata_counts (records) SELECT count(*) FROM metadata_records")


def downgrade() -> None:
    for statement in _dialect(POSTGRESQL_DOWN, SQLITE_DOWN):
        op.execute(statement)
    op.drop_table('metadata_counts')


def _dialect(postgresql: tuple[str, ...], sqlite: tuple[str, ...]) -> tuple[str, ...]:
    return postgresql if op.get_bind().dialect.name == "postgresql" else sqlite
