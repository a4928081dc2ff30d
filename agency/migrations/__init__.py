"""Schema migrations (Alembic): the database's schema version, upgrades, and the start-up check.

Sits just above the foundations and imports only ``config``, ``db`` and ``models``. The
revisions live in ``versions/`` inside the package, so they ship in the wheel;
``env.py`` and ``script.py.mako`` are Alembic's usual files. The composition root
(``services.build_agency``) calls :func:`prepare_schema` at start: the embedded
SQLite database upgrades itself; a PostgreSQL database is created when empty, and
refused with a message naming ``agency db upgrade`` when it is behind.
"""

from agency.migrations.schema_version import (
    UPGRADE_COMMAND, ForeignKeysBroken, MigrationRefused, SchemaBehind, UnknownRevision, current_revisions,
    downgrade, head_revisions, history, new_revision, prepare_schema, upgrade,
)

__all__ = ["UPGRADE_COMMAND", "ForeignKeysBroken", "MigrationRefused", "SchemaBehind", "UnknownRevision",
           "current_revisions", "downgrade", "head_revisions", "history", "new_revision", "prepare_schema", "upgrade"]
