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
    # Large indexes (a metadata index of millions of records) are read through the
    # OS page cache: memory-mapping avoids a system call per page, a bigger page
    # cache keeps the hot index levels in the process.
    cursor.execute("PRAGMA mmap_size=1073741824")
    cursor.execute("PRAGMA cache_size=-65536")
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


@dataclass(frozen=True)
class PreparedStatement:
    """A statement compiled once for a dialect, run straight through the driver.

    For hot statements of plain str/int values: SQLAlchemy's per-execution work
    (cache key of a large statement, per-row parameter processing) can cost more
    than the database does. Constant parameters (from ``.values(...)``) are kept.
    """

    sql: str
    order: tuple[str, ...] | None  # positional drivers (SQLite): parameter names in order
    constants: dict

    @classmethod
    def of(cls, statement: Executable, dialect, column_keys: list[str] | None = None) -> "PreparedStatement":
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        return cls(str(compiled), compiled.positiontup, dict(compiled.params))

    def parameters(self, values: dict):
        if self.order is not None:
            return tuple(values[name] if name in values else self.constants[name] for name in self.order)
        return {**self.constants, **values}


def execute_many(connection: Connection, statement: Executable, rows: list[dict]) -> None:
    """Run an INSERT for many plain rows through the driver's executemany."""
    if not rows:
        return
    prepared = PreparedStatement.of(statement, connection.dialect, column_keys=list(rows[0]))
    connection.exec_driver_sql(prepared.sql, [prepared.parameters(row) for row in rows])
