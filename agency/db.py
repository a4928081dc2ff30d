"""Engine and sessions (SQLAlchemy 2.0 style), for SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
import weakref
from contextlib import contextmanager
from functools import partial
from operator import itemgetter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from sqlalchemy import Connection, Engine, String, Table, bindparam, create_engine, event, func, literal, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement, ColumnElement
from sqlalchemy.sql.expression import FromClause
from sqlalchemy.types import TypeEngine
from sqlalchemy.orm import Session, sessionmaker


DEFAULT_SQLITE_CACHE_MIB = 64


def _sqlite_pragmas(dbapi_connection, _record, cache_mib: int = DEFAULT_SQLITE_CACHE_MIB) -> None:
    # WAL lets the web threads read while the worker writes; FULL sync keeps
    # every committed submission across a crash; busy_timeout queues writers.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Large indexes (a metadata index of millions of records) are read through the
    # OS page cache: memory-mapping avoids a system call per page, a bigger page
    # cache keeps the hot index levels in the process. Python's SQLite library maps at
    # most the file's first 2 GiB whatever is asked; pages past that are read into the
    # page cache, which is why its size is a setting (AGENCY_SQLITE_CACHE_MIB).
    cursor.execute("PRAGMA mmap_size=8589934592")  # address space only; pages come from the OS cache
    cursor.execute(f"PRAGMA cache_size=-{int(cache_mib) * 1024}")
    cursor.close()


def close_with_engine(engine: Engine, close: Callable[[], None]) -> None:
    """Call the bound method ``close`` when ``engine`` is disposed, without keeping its object alive:
    connections taken out of the pool (a detached one per thread) are closed with the engine's own."""
    method_ref = weakref.WeakMethod(close)

    def on_dispose(_engine) -> None:
        method = method_ref()
        if method is not None:
            method()
    event.listen(engine, "engine_disposed", on_dispose)


def make_engine(url: str, sqlite_cache_mib: int = DEFAULT_SQLITE_CACHE_MIB) -> Engine:
    """The engine for ``url``; on SQLite each connection gets the agency's pragmas, with a page cache of
    ``sqlite_cache_mib`` MiB (a bound on each connection's memory)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", partial(_sqlite_pragmas, cache_mib=sqlite_cache_mib))
        return engine
    engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    event.listen(engine, "connect", _postgresql_settings)
    return engine


def _postgresql_settings(dbapi_connection, _record) -> None:
    """JIT off for the agency's sessions. PostgreSQL compiles a statement to machine code when its estimated
    cost passes ``jit_above_cost``; the look-ups of piped queries join a list of keys whose cost the planner
    overestimates as the tables grow, and at 10,000,000 DOIs spent 14.5 ms compiling a statement that ran in
    0.6 ms (docs/scaling.md, session 8). Agency's statements are short look-ups and bounded pages."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True  # a SET outside any transaction: it lasts for the connection
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET jit = off")
    finally:
        dbapi_connection.autocommit = autocommit


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
        from agency import models  # registers every table

        models.Base.metadata.create_all(self.engine)


def open_database(url: str, sqlite_cache_mib: int = DEFAULT_SQLITE_CACHE_MIB) -> Database:
    engine = make_engine(url, sqlite_cache_mib)
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
    def of(cls, statement: Executable, dialect) -> "PreparedStatement":
        compiled = statement.compile(dialect=dialect)
        return cls(str(compiled), compiled.positiontup, dict(compiled.params))

    def parameters(self, values: dict):
        if self.order is not None:
            return tuple(values[name] if name in values else self.constants[name] for name in self.order)
        return {**self.constants, **values}


@dataclass(frozen=True)
class RowsTable:
    """Many rows passed as one parameter and read as a table by the database itself.

    Arrays and ``unnest`` on PostgreSQL, a JSON array and ``json_each`` on SQLite:
    one statement, compiled once, whatever the number of rows, and no per-row
    parameter handling (SQLAlchemy's, or psycopg's parsing of long VALUES lists).
    ``columns`` are the rows' values as SQL expressions; ``ordinal`` is each row's
    0-based position in the list, so results can be traced back to the row that asked.
    """

    source: FromClause
    columns: tuple[ColumnElement, ...]
    ordinal: ColumnElement
    dialect_name: str
    prefix: str

    @classmethod
    def of(cls, dialect_name: str, types: Sequence[TypeEngine], prefix: str = "rows") -> "RowsTable":
        names = [f"c{i}" for i in range(len(types))]
        if dialect_name == "postgresql":
            source = func.unnest(*[bindparam(f"{prefix}_{i}", type_=ARRAY(t)) for i, t in enumerate(types)]) \
                .table_valued(*names, with_ordinality="ordinal").render_derived()
            return cls(source, tuple(source.c[name] for name in names), source.c.ordinal - 1, dialect_name, prefix)
        source = func.json_each(bindparam(prefix, type_=String)).table_valued("key", "value")
        return cls(source, tuple(func.json_extract(source.c.value, f"$[{i}]") for i in range(len(types))),
                   source.c.key, dialect_name, prefix)

    def parameters(self, rows: Sequence[Sequence]) -> dict:
        """The rows (plain str/int/bool/None values) as this table's parameters."""
        if self.dialect_name == "postgresql":
            return {f"{self.prefix}_{i}": [row[i] for row in rows] for i in range(len(self.columns))}
        return {self.prefix: json.dumps(rows)}


def conflict_insert(dialect_name: str):
    """The dialect's INSERT, the one with ON CONFLICT clauses (the agency runs on SQLite and PostgreSQL)."""
    if dialect_name == "postgresql":
        return postgresql.insert
    if dialect_name == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"agency supports SQLite and PostgreSQL, not {dialect_name}")


def bulk_insert(connection: Connection, table: Table, rows: list[dict], constants: dict | None = None,
                on_conflict: Callable | None = None, returning: tuple = ()) -> list:
    """Insert many plain rows (str/int/bool/None) in one statement (see ``RowsTable``);
    returns RETURNING rows.

    ``constants`` are the same for every row (values or SQL expressions);
    ``on_conflict`` takes the dialect's insert statement and returns it with its
    ON CONFLICT clause.
    """
    if not rows:
        return []
    constants = constants or {}
    if connection.dialect.name == "sqlite" and not returning:
        _sqlite_executemany(connection, table, rows, constants, on_conflict)
        return []
    names = list(rows[0])
    extra = [value if isinstance(value, ClauseElement) else literal(value, table.c[name].type)
             for name, value in constants.items()]
    table_of_rows = RowsTable.of(connection.dialect.name, [table.c[name].type for name in names], "bulk")
    parameters = table_of_rows.parameters([[row[name] for name in names] for row in rows])
    insert = conflict_insert(connection.dialect.name)
    picked, source = list(table_of_rows.columns), table_of_rows.source
    # WHERE true: SQLite needs it to tell the SELECT's end from an ON CONFLICT clause.
    statement = insert(table).from_select(names + list(constants),
                                          select(*picked, *extra).select_from(source).where(true()))
    if on_conflict is not None:
        statement = on_conflict(statement)
    if returning:
        statement = statement.returning(*returning)
    result = connection.execute(statement, parameters)
    return result.all() if returning else []


_EXECUTEMANY_CACHE: dict[tuple, tuple[str, Callable[[dict], tuple]]] = {}


def _sqlite_executemany(connection: Connection, table: Table, rows: list[dict], constants: dict,
                        on_conflict: Callable | None) -> None:
    """SQLite without RETURNING: one prepared INSERT run for every row by the driver itself.

    sqlite3's executemany reuses the compiled statement and binds plain values in C;
    measured on the metadata tables (35 columns) it took 40% of the time of the JSON
    array route, which parses every row's values again in SQL.
    """
    names = tuple(rows[0])
    values = {name: value for name, value in constants.items() if not isinstance(value, ClauseElement)}
    expressions = {name: value for name, value in constants.items() if isinstance(value, ClauseElement)}
    key = (table.name, names, tuple(values), tuple((name, str(e)) for name, e in expressions.items()), on_conflict)
    cached = _EXECUTEMANY_CACHE.get(key)
    if cached is None:
        statement = sqlite.insert(table).values({**{name: bindparam(name) for name in (*names, *values)},
                                                 **expressions})
        if on_conflict is not None:
            statement = on_conflict(statement)
        compiled = statement.compile(dialect=connection.dialect)
        order = tuple(compiled.positiontup)
        getter = itemgetter(*order) if len(order) > 1 else (lambda row, name=order[0]: (row[name],))
        cached = _EXECUTEMANY_CACHE[key] = (str(compiled), getter)
    sql, getter = cached
    # Each row's values are taken as the driver binds it (map, not a list built first: no Python loop).
    parameters = map(getter, ({**row, **values} for row in rows) if values else rows)
    with driver_cursor(connection, sql) as cursor:
        cursor.executemany(sql, parameters)


@contextmanager
def driver_cursor(connection: Connection, sql: str) -> Iterator:
    """A DB-API cursor on the connection's current transaction, for hot statements where
    SQLAlchemy's per-row work costs more than the database's. The driver's errors come
    out as SQLAlchemy's (IntegrityError, DataError, ...), as from ``connection.execute``."""
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        yield cursor
    except connection.dialect.dbapi.Error as exc:
        raise DBAPIError.instance(sql, None, exc, connection.dialect.dbapi.Error) from exc
    finally:
        cursor.close()
