"""The SQL a piece of code runs, and SQLite's plan for it: for tests that a path uses the index meant for it."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import Engine, event


@contextmanager
def statements_starting(engine: Engine, start: str) -> Iterator[list[tuple[str, object]]]:
    """Collects (statement, parameters) of every statement beginning with ``start`` run inside the block."""
    seen: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _executemany):
        if statement.startswith(start):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def sqlite_plan(engine: Engine, statement: str, parameters) -> list[str]:
    """The steps of SQLite's EXPLAIN QUERY PLAN for a captured statement."""
    with engine.connect() as conn:
        return [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
