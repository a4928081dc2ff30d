"""What every connection of an agency is set to: on SQLite the page cache of AGENCY_SQLITE_CACHE_MIB (the bound
on its memory past the 2 GiB SQLite maps); on PostgreSQL JIT compilation off (it cost look-ups of piped queries
14.5 ms of compiling for 0.6 ms of work at 10,000,000 DOIs)."""

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


def test_postgresql_connections_have_jit_off_and_ignore_the_cache_setting(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: JIT is PostgreSQL's, and it has no per-connection page cache to set")
    db = open_database(database_url, sqlite_cache_mib=5)
    try:
        first = db.engine.connect()
        second = db.engine.connect()
        try:
            for connection in (first, second):
                assert connection.execute(text("SHOW jit")).scalar() == "off"
                connection.rollback()  # a SET inside a transaction would end with it: this one must not
                assert connection.execute(text("SHOW jit")).scalar() == "off"
        finally:
            first.close()
            second.close()
    finally:
        db.engine.dispose()
