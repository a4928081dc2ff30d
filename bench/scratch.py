"""What the benchmarks share: a throwaway database and a free port on loopback."""

from __future__ import annotations

import socket
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, text


@contextmanager
def scratch_database(url: str | None, sqlite_file: Path) -> Iterator[str]:
    """The URL of an empty database: SQLite at ``sqlite_file`` when ``url`` is empty, else a
    throwaway schema in that PostgreSQL database, dropped afterwards."""
    if not url:
        yield f"sqlite:///{sqlite_file}"
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
