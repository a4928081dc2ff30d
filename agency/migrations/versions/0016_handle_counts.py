"""Each prefix's number of handles kept by triggers: a listing's totalCount without counting the prefix

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 17:10:00

Every ``GET /api/handles?prefix=`` page answers ``totalCount``, and the operators'
prefix list shows each prefix's DOIs. Counting a prefix of 1,000,000 handles on
PostgreSQL visits the heap of every page the visibility map does not mark
all-visible: 100 ms at 1,000,000 DOIs, 184 ms at 10,000,000 after a few deposits
(docs/scaling.md, session 8), on every page. The counts are now kept as writes
happen, by triggers, so no write path can forget them:

- PostgreSQL: a statement-level trigger adds one row per prefix and statement
  (+n inserted, -n deleted) to ``handle_counts``. Rows are only ever added, so
  concurrent writers never wait for each other on a counter; readers sum a
  prefix's rows, and ``agency.handles.counts`` folds them back into one row.
- SQLite (one writer at a time): a row trigger keeps one row per prefix.

A handle whose prefix changes (no code path does this) moves its count too.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

POSTGRESQL_UP = (
    """CREATE OR REPLACE FUNCTION handle_counts_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO handle_counts (prefix, handles) SELECT prefix, count(*) FROM added GROUP BY prefix;
    RETURN NULL;
END $$""",
    """CREATE OR REPLACE FUNCTION handle_counts_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO handle_counts (prefix, handles) SELECT prefix, -count(*) FROM removed GROUP BY prefix;
    RETURN NULL;
END $$""",
    """CREATE OR REPLACE FUNCTION handle_counts_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO handle_counts (prefix, handles) VALUES (OLD.prefix, -1), (NEW.prefix, 1);
    RETURN NULL;
END $$""",
    """CREATE OR REPLACE FUNCTION handle_counts_emptied() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM handle_counts;
    RETURN NULL;
END $$""",
    "CREATE TRIGGER handles_counted_on_insert AFTER INSERT ON handles REFERENCING NEW TABLE AS added "
    "FOR EACH STATEMENT EXECUTE FUNCTION handle_counts_added()",
    "CREATE TRIGGER handles_counted_on_delete AFTER DELETE ON handles REFERENCING OLD TABLE AS removed "
    "FOR EACH STATEMENT EXECUTE FUNCTION handle_counts_removed()",
    "CREATE TRIGGER handles_counted_on_prefix_change AFTER UPDATE OF prefix ON handles FOR EACH ROW "
    "WHEN (OLD.prefix IS DISTINCT FROM NEW.prefix) EXECUTE FUNCTION handle_counts_moved()",
    "CREATE TRIGGER handles_counted_on_truncate AFTER TRUNCATE ON handles "
    "FOR EACH STATEMENT EXECUTE FUNCTION handle_counts_emptied()",
)
POSTGRESQL_DOWN = (
    "DROP TRIGGER handles_counted_on_truncate ON handles",
    "DROP TRIGGER handles_counted_on_prefix_change ON handles",
    "DROP TRIGGER handles_counted_on_delete ON handles",
    "DROP TRIGGER handles_counted_on_insert ON handles",
    "DROP FUNCTION handle_counts_emptied()",
    "DROP FUNCTION handle_counts_moved()",
    "DROP FUNCTION handle_counts_removed()",
    "DROP FUNCTION handle_counts_added()",
)

# The prefix's row changed, or made when there was none (changes() in a trigger counts the rows of the trigger's
# previous statement): one index seek per handle.
_SQLITE_ADD = """UPDATE handle_counts SET handles = handles + 1 WHERE prefix = {row}.prefix;
    INSERT INTO handle_counts (prefix, handles) SELECT {row}.prefix, 1 WHERE changes() = 0;"""
_SQLITE_TAKE = "UPDATE handle_counts SET handles = handles - 1 WHERE prefix = {row}.prefix;"
SQLITE_UP = (
    f"CREATE TRIGGER handles_counted_on_insert AFTER INSERT ON handles BEGIN\n    "
    f"{_SQLITE_ADD.format(row='NEW')}\nEND",
    f"CREATE TRIGGER handles_counted_on_delete AFTER DELETE ON handles BEGIN\n    "
    f"{_SQLITE_TAKE.format(row='OLD')}\nEND",
    f"CREATE TRIGGER handles_counted_on_prefix_change AFTER UPDATE OF prefix ON handles "
    f"WHEN OLD.prefix IS NOT NEW.prefix BEGIN\n    {_SQLITE_TAKE.format(row='OLD')}\n    "
    f"{_SQLITE_ADD.format(row='NEW')}\nEND",
)
SQLITE_DOWN = (
    "DROP TRIGGER handles_counted_on_prefix_change",
    "DROP TRIGGER handles_counted_on_delete",
    "DROP TRIGGER handles_counted_on_insert",
)


def upgrade() -> None:
    op.create_table(
        'handle_counts',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), primary_key=True,
                  autoincrement=True),
        sa.Column('prefix', sa.String(length=64), nullable=False),
        sa.Column('handles', sa.BigInteger(), nullable=False),
    )
    op.create_index('ix_handle_counts_prefix', 'handle_counts', ['prefix'], unique=False)
    for statement in _dialect(POSTGRESQL_UP, SQLITE_UP):
        op.execute(statement)
    # Counted after the triggers exist: creating one waits for writes in flight and holds new ones off until
    # this transaction ends, so every handle is counted once, by this statement or by a trigger.
    op.execute("INSERT INTO handle_counts (prefix, handles) SELECT prefix, count(*) FROM handles GROUP BY prefix")


def downgrade() -> None:
    for statement in _dialect(POSTGRESQL_DOWN, SQLITE_DOWN):
        op.execute(statement)
    op.drop_index('ix_handle_counts_prefix', table_name='handle_counts')
    op.drop_table('handle_counts')


def _dialect(postgresql: tuple[str, ...], sqlite: tuple[str, ...]) -> tuple[str, ...]:
    return postgresql if op.get_bind().dialect.name == "postgresql" else sqlite
