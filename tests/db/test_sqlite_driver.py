"""The embedded database's driver: a SQLite that memory-maps the whole database file.

Python's bundled SQLite is built with SQLITE_MAX_MMAP_SIZE at 2 GiB and quietly lowers any
larger ``mmap_size`` to that; past it every page read is a system call (a handle look-up at
10 million DOIs took 45 us instead of 18). pysqlite3-binary is a dependency on Linux x86_64.
"""

from __future__ import annotations

import platform

import pytest
from sqlalchemy import text

from agency.db import make_engine, sqlite_driver

WHEEL_PLATFORM = platform.system() == "Linux" and platform.machine() == "x86_64"


@pytest.mark.skipif(not WHEEL_PLATFORM, reason="pysqlite3-binary has wheels for Linux x86_64 only; "
                                               "elsewhere Python's own sqlite3 serves, mapping 2 GiB")
def test_connections_map_the_whole_file_not_just_two_gib(tmp_path):
    assert sqlite_driver().__name__ == "pysqlite3.dbapi2"
    engine = make_engine(f"sqlite:///{tmp_path / 'agency.db'}")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA mmap_size")).scalar() >= 1 << 40
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        engine.dispose()
