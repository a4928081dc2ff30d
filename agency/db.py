"""Engine and sessions (SQLAlchemy 2.0 style), for SQLite and PostgreSQL alike."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.sql.base import Executable
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker


class Base(DeclarativeBase):
    """Declarative base of every table the agency keeps."""


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the web threads read while the worker writes; FULL sync keeps
    # every committed submission across a crash; busy_timeout queues writers.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


@dataclass
class Database:
    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed on success, rolled back on error."""
        with self.sessions() as session, session.begin():
            yield session

    def create_all(self) -> None:
        from agency import models  # noqa: F401  (registers every table)

        Base.metadata.create_all(self.engine)


def open_database(url: str) -> Database:
    engine = make_engine(url)
    return Database(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))


def execute_many(connection: Connection, statement: Executable, rows: list[dict]) -> None:
    """Run an INSERT for many rows straight through the driver's executemany.

    For the hot path's plain str/int rows: SQLAlchemy's per-row parameter
    processing costs more than the database work there. Constant parameters of
    the statement (from ``.values(...)``) are merged into every row.
    """
    if not rows:
        return
    compiled = statement.compile(dialect=connection.dialect, column_keys=list(rows[0]))
    constants = compiled.params
    if compiled.positiontup is not None:
        order = compiled.positiontup
        parameters = [tuple(row[name] if name in row else constants[name] for name in order) for row in rows]
    else:
        parameters = [{**constants, **row} for row in rows]
    connection.exec_driver_sql(str(compiled), parameters)
