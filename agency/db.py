"""Engine and sessions (SQLAlchemy 2.0 style), for SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import Connection, Engine, String, Table, bindparam, create_engine, event, func, literal, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement
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
    cursor.execute("PRAGMA mmap_size=8589934592")  # address space only; pages come from the OS cache
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


def bulk_insert(connection: Connection, table: Table, rows: list[dict], constants: dict | None = None,
                on_conflict: Callable | None = None, returning: tuple = ()) -> list:
    """Insert many plain rows (str/int/bool/None) in one statement; returns RETURNING rows.

    The rows travel as one parameter that the database unpacks itself: arrays and
    ``unnest`` on PostgreSQL, a JSON array and ``json_each`` on SQLite. Per-row
    parameter handling (SQLAlchemy's, and psycopg's parsing of long multi-row
    VALUES statements) cost more than the database work it fed. ``constants`` are
    the same for every row (values or SQL expressions); ``on_conflict`` takes the
    dialect's insert statement and returns it with its ON CONFLICT clause.
    """
    if not rows:
        return []
    constants = constants or {}
    names = list(rows[0])
    extra = [value if isinstance(value, ClauseElement) else literal(value, table.c[name].type)
             for name, value in constants.items()]
    if connection.dialect.name == "postgresql":
        columns = [table.c[name] for name in names]
        source = func.unnest(*[bindparam(f"bulk_{c.name}", type_=ARRAY(c.type)) for c in columns]) \
            .table_valued(*names).render_derived()
        picked = [source.c[name] for name in names]
        parameters = {f"bulk_{name}": [row[name] for row in rows] for name in names}
        insert = postgresql.insert
    else:
        source = func.json_each(bindparam("bulk_rows", type_=String)).table_valued("value")
        picked = [func.json_extract(source.c.value, f"$[{i}]") for i in range(len(names))]
        parameters = {"bulk_rows": json.dumps([[row[name] for name in names] for row in rows])}
        insert = sqlite.insert
    # WHERE true: SQLite needs it to tell the SELECT's end from an ON CONFLICT clause.
    statement = insert(table).from_select(names + list(constants),
                                          select(*picked, *extra).select_from(source).where(true()))
    if on_conflict is not None:
        statement = on_conflict(statement)
    if returning:
        statement = statement.returning(*returning)
    result = connection.execute(statement, parameters)
    return result.all() if returning else []
