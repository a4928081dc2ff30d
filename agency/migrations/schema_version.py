"""Where a database's schema stands against the revisions shipped with this package, and upgrades.

Databases made before migrations existed (every start ran ``create_all``) hold
exactly the first revision's tables: they are adopted by stamping that revision
(no table is touched), then upgraded like any other.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from pathlib import Path
from typing import Callable, Iterator

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, inspect, text

from agency.db import Database

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent
BASELINE = "0001"  # the schema every database had before migrations: adopted by stamping
UPGRADE_COMMAND = "agency db upgrade"
# Any constant: the key of the PostgreSQL advisory lock that serializes upgrades across processes.
PG_UPGRADE_LOCK = 0x61676E63


class SchemaBehind(RuntimeError):
    """The database's schema is older than this code (or newer: code older than the database)."""


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revisions() -> tuple[str, ...]:
    return tuple(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revisions(connection: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(connection).get_current_heads())


def _is_empty(connection: Connection) -> bool:
    return not inspect(connection).get_table_names()


def _predates_migrations(connection: Connection) -> bool:
    """Tables made by ``create_all`` before there were migrations, and no version row."""
    return not current_revisions(connection) and "accounts" in inspect(connection).get_table_names()


@contextlib.contextmanager
def _exclusive(db: Database) -> Iterator[Connection]:
    """A connection holding the upgrade lock: one process upgrades, the others then find it done."""
    with db.engine.connect() as connection:
        if db.dialect == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": PG_UPGRADE_LOCK})
            connection.commit()
            try:
                yield connection
            finally:
                connection.rollback()
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PG_UPGRADE_LOCK})
                connection.commit()
            return
        database = db.engine.url.database
        if not database or database == ":memory:":
            yield connection
            return
        with open(f"{database}.migrate-lock", "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield connection
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)


class MigrationRefused(RuntimeError):
    """An upgrade or downgrade that was not carried out (nothing was changed); the message says why."""


class UnknownRevision(MigrationRefused):
    """The revision asked for is not one this version of agency ships."""


class ForeignKeysBroken(MigrationRefused):
    """An upgrade would have left rows whose foreign key finds nothing: it was rolled back."""


@contextlib.contextmanager
def _foreign_keys_off(connection: Connection) -> Iterator[None]:
    """SQLite: foreign keys off while revisions run (they are checked before the upgrade is kept).

    A revision that rebuilds a table (copy, drop, rename: SQLite's only way to change most of a
    table's declaration) would otherwise have the drop delete, through ON DELETE CASCADE, the
    rows that refer to it, or fail on those that may not dangle. This is SQLite's own procedure
    (lang_altertable.html, "other kinds of table schema changes"). The pragma only takes effect
    outside a transaction, so it is set before the first revision runs."""
    if connection.dialect.name != "sqlite":
        yield
        return
    connection.commit()
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        connection.rollback()  # a no-op after the upgrade's commit; the pragma needs no open transaction
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")


def _begin(connection: Connection) -> None:
    """SQLite: open the transaction now, so that the revisions' DDL is part of it.

    Python's sqlite3 module begins a transaction only before a data change, so a revision's
    CREATE TABLE would otherwise be kept even if a later step fails and the rest is rolled back."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN")


def _check_foreign_keys(connection: Connection) -> None:
    """Refuse (roll back) an upgrade that leaves a row whose foreign key finds nothing."""
    if connection.dialect.name != "sqlite":
        return  # PostgreSQL checks foreign keys itself, also during revisions
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        connection.rollback()
        raise ForeignKeysBroken(f"the upgrade would leave {len(broken)} rows whose foreign key finds nothing "
                                f"(first: {tuple(broken[0])}); it was rolled back")


def upgrade(db: Database, revision: str = "heads") -> tuple[str, ...]:
    """Bring the schema to ``revision`` (adopting a pre-migration database first); returns the new version."""
    return _migrate(db, command.upgrade, revision)


def downgrade(db: Database, revision: str) -> tuple[str, ...]:
    """Take the schema back to ``revision`` (an operator undoing an upgrade); returns the new version."""
    return _migrate(db, command.downgrade, revision)


def _migrate(db: Database, step: Callable[[Config, str], None], revision: str) -> tuple[str, ...]:
    """Run ``step`` (Alembic's upgrade or downgrade) to ``revision`` under the upgrade lock, in one transaction."""
    with _exclusive(db) as connection, _foreign_keys_off(connection):
        config = alembic_config(connection)
        if _predates_migrations(connection):
            log.warning("database has no schema version: adopting it as revision %s (its tables are kept)", BASELINE)
            command.stamp(config, BASELINE)
            connection.commit()
        _begin(connection)
        try:
            step(config, revision)
        except CommandError as exc:  # Alembic's word for a revision it cannot find or reach
            raise UnknownRevision(f"{exc}: nothing was changed (`agency db history` lists the revisions)") from exc
        _check_foreign_keys(connection)
        connection.commit()
        return current_revisions(connection)


def prepare_schema(db: Database, auto_upgrade: bool) -> None:
    """At start: upgrade when allowed (or when the database is empty), else refuse a database that is behind."""
    heads = set(head_revisions())
    with db.engine.connect() as connection:
        current = set(current_revisions(connection))
        empty = not current and _is_empty(connection)
    if current == heads:
        return
    if auto_upgrade or empty:
        upgrade(db)
        return
    unknown = current - set(_all_revisions())
    if unknown:
        raise SchemaBehind(f"the database is at schema revision {', '.join(sorted(unknown))}, which this version "
                           f"of agency does not know (it expects {', '.join(sorted(heads))}): run a newer agency")
    shown = ", ".join(sorted(current)) or "none (made before migrations)"
    raise SchemaBehind(f"the database schema is behind (at {shown}, this version needs {', '.join(sorted(heads))}): "
                       f"run `{UPGRADE_COMMAND}` (with the same AGENCY_DATABASE_URL), then start again")


def _all_revisions() -> list[str]:
    return [script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()]


def history() -> list[str]:
    """Every revision, newest first: ``<rev> (<parent>): <message>``."""
    lines = []
    for script in ScriptDirectory.from_config(alembic_config()).walk_revisions():
        parent = script.down_revision or "base"
        head = " (head)" if script.is_head else ""
        lines.append(f"{script.revision}{head} <- {parent}: {script.doc}")
    return lines


def new_revision(message: str) -> str:
    """Write the next numbered revision from what the models have that head lacks (for developers).

    Compared against a scratch SQLite database upgraded to head, so no server is needed;
    review the file (PostgreSQL-only details, data moves) before committing it.
    """
    import tempfile

    from agency.db import open_database

    number = max(int(rev) for rev in _all_revisions() if rev.isdigit()) + 1
    with tempfile.TemporaryDirectory() as scratch:
        db = open_database(f"sqlite:///{scratch}/scratch.db")
        upgrade(db)
        with db.engine.connect() as connection:
            script = command.revision(alembic_config(connection), message=message, autogenerate=True,
                                      rev_id=f"{number:04d}")
        db.engine.dispose()
    return script.path
