"""Handles and their values stored in key order on SQLite (WITHOUT ROWID): one B-tree descent per look-up

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 13:10:00

A rowid table keyed by text keeps two B-trees: the primary key's index, then the
row by rowid. A resolution read both for ``handles`` and both for
``handle_values``: four descents, and past SQLite's 2 GiB memory map (a
10,000,000-DOI agency) each page of them is a read. Stored WITHOUT ROWID, the
row lives in the key's B-tree: two descents. The tables are rebuilt (SQLite
cannot change this in place), their rows copied as they are; a 10,000,000-DOI
agency's rebuild copies both tables (about a fifth of the file) once. The
upgrade runs with foreign keys off, as SQLite's own procedure for a table
rebuild asks (``schema_version.upgrade`` checks them afterwards). PostgreSQL
has no rowid: nothing to do there.
"""

from __future__ import annotations

import re

from alembic import op


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

TABLES = ("handle_values", "handles")
SUFFIX = " WITHOUT ROWID"


def upgrade() -> None:
    for table in TABLES:
        _rebuild(table, without_rowid=True)


def downgrade() -> None:
    for table in TABLES:
        _rebuild(table, without_rowid=False)


def _rebuild(table: str, without_rowid: bool) -> None:
    """Copy ``table`` into a new one declared the other way, keeping its columns, rows and indexes."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    create = bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                                  (table,)).scalar_one().rstrip()
    if create.upper().endswith(SUFFIX) == without_rowid:
        return  # already so (a database made from the models)
    indexes = bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                                   "AND sql IS NOT NULL", (table,)).scalars().all()
    rebuilt = f"_rebuilt_{table}"
    body = re.sub(r'^CREATE TABLE\s+("?)' + table + r'\1', f'CREATE TABLE "{rebuilt}"', create, count=1,
                  flags=re.IGNORECASE)
    body = body + SUFFIX if without_rowid else body[: -len(SUFFIX)]
    bind.exec_driver_sql(body)
    bind.exec_driver_sql(f'INSERT INTO "{rebuilt}" SELECT * FROM "{table}"')
    bind.exec_driver_sql(f'DROP TABLE "{table}"')
    bind.exec_driver_sql(f'ALTER TABLE "{rebuilt}" RENAME TO "{table}"')
    for index in indexes:
        bind.exec_driver_sql(index)
