"""Engine and sessions (SQLAlchemy 2.0 style), for SQLite and PostgreSQL alike."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import Connection, Engine, Table, bindparam, create_engine, event, func, literal, select
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
    """Insert many plain rows the way each database does it fastest; returns RETURNING rows.

    PostgreSQL: one ``INSERT … SELECT … FROM unnest(arrays)`` per call (psycopg
    re-parses a long multi-row VALUES statement on every execution and pays a
    pipeline step per row in executemany). SQLite: the driver's executemany
    (SQLAlchemy's multi-row VALUES when rows must come back). ``constants`` are
    the same for every row (values or SQL expressions); ``on_conflict`` takes the
    dialect's insert statement and returns it with its ON CONFLICT clause.
    """
    if not rows:
        return []
    constants = constants or {}
    names = list(rows[0])
    if connection.dialect.name == "postgresql":
        columns = [table.c[name] for name in names]
        source = func.unnest(*[bindparam(f"bulk_{c.name}", type_=ARRAY(c.type)) for c in columns]) \
            .table_valued(*names).render_derived()
        extra = [value if isinstance(value, ClauseElement) else literal(value, table.c[name].type)
                 for name, value in constants.items()]
        statement = postgresql.insert(table).from_select(
            names + list(constants), select(*[source.c[name] for name in names], *extra))
    else:
        statement = sqlite.insert(table).values(**constants)
    if on_conflict is not None:
        statement = on_conflict(statement)
    if returning:
        statement = statement.returning(*returning)
    if connection.dialect.name == "postgresql":
        result = connection.execute(statement, {f"bulk_{name}": [row[name] for row in rows] for name in names})
        return result.all() if returning else []
    if returning:
        return connection.execute(statement, rows).all()
    prepared = PreparedStatement.of(statement, connection.dialect, column_keys=names)
    connection.exec_driver_sql(prepared.sql, [prepared.parameters(row) for row in rows])
    return []
