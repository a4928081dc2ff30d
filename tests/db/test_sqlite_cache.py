"""AGENCY_SQLITE_CACHE_MIB: every SQLite connection of an agency gets that page cache (the bound on its memory
past the 2 GiB SQLite maps); PostgreSQL ignores it."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from agency.config import load_settings
from agency.db import DEFAULT_SQLITE_CACHE_MIB, open_database
from agency.services import build_agency


def _cache_mib(engine) -> int:
    with engine.connect() as connection:
        return -connection.execute(text("PRAGMA cache_size")).scalar() // 1024


def test_a_database_opened_without_the_setting_keeps_the_default(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'plain.db'}")
    try:
        assert _cache_mib(db.engine) == DEFAULT_SQLITE_CACHE_MIB == load_settings({}).sqlite_cache_mib
    finally:
        db.engine.dispose()


def test_every_connection_of_the_agency_gets_the_configured_cache(tmp_path):
    settings = load_settings({"AGENCY_DATA_DIR": str(tmp_path / "var"), "AGENCY_BATCH_DIR": str(tmp_path / "b"),
                              "AGENCY_RUN_WORKER": "0", "AGENCY_RUN_SCHEDULER": "0",
                              "AGENCY_SQLITE_CACHE_MIB": "300"})
    svc = build_agency(settings)
    try:
        first = svc.db.engine.connect()
        second = svc.db.engine.connect()  # a second pooled connection is opened, not reused
        try:
            for connection in (first, second):
                assert -connection.execute(text("PRAGMA cache_size")).scalar() == 300 * 1024
        finally:
            first.close()
            second.close()
    finally:
        svc.db.engine.dispose()


def test_postgresql_ignores_the_setting(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: it has no per-connection page cache to set")
    db = open_database(database_url, sqlite_cache_mib=5)
    try:
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        db.engine.dispose()
