"""Alembic's environment: runs revisions on the connection the agency hands it.

``agency db ...`` and the start-up check pass their open connection in
``config.attributes["connection"]``; the ``alembic`` command line (used to write
a new revision with ``--autogenerate``) gets an engine from ``AGENCY_DATABASE_URL``.
"""

from __future__ import annotations

from alembic import context

from agency.models.types import UTCDateTime

from agency import models
from agency.config import load_settings
from agency.db import make_engine

config = context.config
target_metadata = models.Base.metadata


def run_on(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True,
                      render_item=render_item)
    with context.begin_transaction():
        context.run_migrations()


def render_item(kind: str, item, _autogen_context):
    """Write our column types as the plain SQLAlchemy types they store, so revisions import nothing of ours."""
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


connection = config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:
    settings = load_settings()
    engine = make_engine(settings.effective_database_url, settings.sqlite_cache_mib)
    with engine.begin() as opened:
        run_on(opened)
    engine.dispose()
