"""db.bulk_insert: many rows in one call, constants, conflicts, RETURNING, and errors as SQLAlchemy's."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from agency.db import bulk_insert, open_database

METADATA = MetaData()
ITEMS = Table("bulk_items", METADATA, Column("key", String(32), primary_key=True), Column("version", Integer),
              Column("note", String(64), nullable=False), Column("batch", Integer), Column("stamp", String(40)))


@pytest.fixture
def db(database_url):
    database = open_database(database_url)
    METADATA.create_all(database.engine)
    yield database
    METADATA.drop_all(database.engine)
    database.engine.dispose()


def _newer_wins(statement):
    return statement.on_conflict_do_update(
        index_elements=[ITEMS.c.key], set_={"version": statement.excluded.version, "note": statement.excluded.note},
        where=ITEMS.c.version < statement.excluded.version)


def _insert(connection):
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


def stored(db) -> dict:
    with db.engine.connect() as connection:
        return {row.key: row for row in connection.execute(select(ITEMS))}


def test_rows_and_constants_of_each_call_are_written(db):
    with db.engine.begin() as connection:
        for batch in (1, 2):  # the same shape twice: the second call's constants, not the first's
            bulk_insert(connection, ITEMS, [{"key": f"{batch}-{n}", "version": n, "note": f"n{n}"} for n in range(300)],
                        constants={"batch": batch, "stamp": func.current_timestamp()})
    rows = stored(db)
    assert len(rows) == 600
    assert {rows[f"2-{n}"].batch for n in range(300)} == {2} and rows["1-7"].batch == 1
    assert rows["2-299"].version == 299 and rows["2-299"].note == "n299" and rows["1-0"].stamp


def test_conflicts_follow_the_clause_with_and_without_returning(db):
    with db.engine.begin() as connection:
        bulk_insert(connection, ITEMS, [{"key": k, "version": 5, "note": "first"} for k in "abc"])
        bulk_insert(connection, ITEMS, [{"key": "a", "version": 9, "note": "newer"},
                                        {"key": "b", "version": 1, "note": "older"}], on_conflict=_newer_wins)
        written = bulk_insert(connection, ITEMS, [{"key": "c", "version": 7, "note": "newer"},
                                                  {"key": "d", "version": 1, "note": "new"}],
                              on_conflict=_newer_wins, returning=(ITEMS.c.key,))
    assert sorted(row[0] for row in written) == ["c", "d"]
    rows = stored(db)
    assert [(rows[k].version, rows[k].note) for k in "abcd"] == [(9, "newer"), (5, "first"), (7, "newer"), (1, "new")]


@pytest.mark.parametrize("returning", [(), (ITEMS.c.key,)])
def test_a_refused_row_raises_sqlalchemys_error_and_writes_nothing(db, returning):
    with pytest.raises(IntegrityError):
        with db.engine.begin() as connection:
            bulk_insert(connection, ITEMS, [{"key": "ok", "version": 1, "note": "fine"},
                                            {"key": "bad", "version": 1, "note": None}], returning=returning)
    assert stored(db) == {}
