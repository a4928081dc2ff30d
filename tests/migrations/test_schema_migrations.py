"""Schema migrations: the models and the revisions agree, upgrades lose nothing, production refuses to start behind."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    JSON, BigInteger, Boolean, DateTime, Integer, MetaData, String, Text, inspect, select, text,
)

from agency import migrations, models
from agency.cli import main
from agency.config import load_settings
from agency.db import open_database
from agency.migrations.schema_version import BASELINE
from agency.services import build_agency

FIRST = BASELINE
ROWS = 3


@pytest.fixture
def db(database_url):
    database = open_database(database_url)
    yield database
    database.engine.dispose()


def test_one_head_and_a_first_revision():
    """Two engineers' revisions after the same parent make two heads: caught here, not in production."""
    assert len(migrations.head_revisions()) == 1
    assert migrations.history()[-1].startswith(f"{FIRST} ")


def test_models_and_migrations_agree(db):
    """CI fails when a model changed without a revision (or a revision without the model)."""
    migrations.upgrade(db)
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, models.Base.metadata)
    assert differences == [], "models and migrations disagree; add a revision (`agency db revision -m ...`)"


def test_a_changed_model_is_noticed(db):
    """The comparison above can fail: a column the migrations never made is reported."""
    from sqlalchemy import Column, Table

    migrations.upgrade(db)
    metadata = MetaData()
    for table in models.Base.metadata.sorted_tables:
        table.to_metadata(metadata)
    Table("accounts", metadata, Column("nickname", String(40)), extend_existing=True)
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        differences = compare_metadata(context, metadata)
    assert [(d[0], d[3].name) for d in differences if d[0] == "add_column"] == [("add_column", "nickname")]


def _value(column, row: int):
    """A value of the column's type for row ``row``; a foreign key gets its parent row's value."""
    for key in column.foreign_keys:
        parent = key.column
        return _value(parent, row)
    kind = column.type
    if isinstance(kind, (Integer, BigInteger)):
        return row
    if isinstance(kind, Boolean):
        return row % 2 == 0
    if isinstance(kind, DateTime):
        return datetime(2026, 1, row, 12, 30, tzinfo=timezone.utc)
    if isinstance(kind, JSON):
        return {"row": row, "column": column.name}
    if isinstance(kind, (String, Text)):
        text = f"{column.table.name[:6]}-{column.name}-{row}"
        length = getattr(kind, "length", None)
        return text[-length:] if length else text
    raise AssertionError(f"no test value for {column.table.name}.{column.name} ({kind!r})")


def _snapshot(connection) -> dict[str, list[dict]]:
    metadata = MetaData()
    metadata.reflect(connection)
    found = {}
    for table in metadata.sorted_tables:
        if table.name == "alembic_version":
            continue
        order = list(table.primary_key.columns) or list(table.columns)
        found[table.name] = [dict(row._mapping) for row in connection.execute(select(table).order_by(*order))]
    return found


def test_upgrading_a_filled_first_revision_database_loses_nothing(db):
    migrations.upgrade(db, FIRST)
    with db.engine.begin() as connection:
        metadata = MetaData()
        metadata.reflect(connection)
        for table in metadata.sorted_tables:
            if table.name == "alembic_version":
                continue
            connection.execute(table.insert(), [{c.name: _value(c, row) for c in table.columns}
                                                for row in range(1, ROWS + 1)])
    with db.engine.connect() as connection:
        before = _snapshot(connection)
    assert before["accounts"] and before["handles"] and before["audit_events"] and before["record_results"]

    migrations.upgrade(db)

    with db.engine.connect() as connection:
        assert set(migrations.current_revisions(connection)) == set(migrations.head_revisions())
        after = _snapshot(connection)
    for table, rows in before.items():
        assert table in after, f"table {table} was dropped"
        kept = [{name: row[name] for name in rows[0] if name in row} for row in after[table]]
        assert len(after[table]) == len(rows), table
        for old, new in zip(rows, kept):
            assert {k: _content(v) for k, v in old.items() if k in new} == {k: _content(v) for k, v in new.items()}, \
                table


def _content(value):
    """A value's content across a type change a revision makes on purpose (text stored as UTF-8 bytes)."""
    return bytes(value).decode("utf-8") if isinstance(value, (bytes, memoryview)) else value


def _settings(tmp_path, database_url, **extra):
    return load_settings(environ={}, data_dir=tmp_path / "var", batch_dir=tmp_path / "batches",
                         database_url=database_url, password_time_cost=1, run_worker=False,
                         run_scheduler=False, **extra)


def test_a_database_made_before_migrations_is_adopted_with_its_rows(tmp_path, database_url, db, monkeypatch):
    """Every start used to run create_all: such a database is stamped as the first revision, not rebuilt."""
    migrations.upgrade(db, FIRST)  # the tables create_all made then, and no version row
    with db.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE alembic_version")
    with db.engine.begin() as connection:  # the first revision's columns (the model has more since)
        connection.exec_driver_sql("INSERT INTO accounts (login, email, password_hash, created_at) "
                                   "VALUES ('old', 'old@example.org', 'x', CURRENT_TIMESTAMP)")
    if db.dialect == "postgresql":
        with pytest.raises(migrations.SchemaBehind, match=r"at none \(made before migrations\).*run `agency db upgrade`"):
            build_agency(_settings(tmp_path, database_url))
        monkeypatch.setenv("AGENCY_DATABASE_URL", database_url)
        monkeypatch.setenv("AGENCY_DATA_DIR", str(tmp_path / "var"))
        assert main(["db", "current"]) == 1
        assert main(["db", "upgrade"]) == 0
        assert main(["db", "current"]) == 0
    svc = build_agency(_settings(tmp_path, database_url))  # SQLite, the embedded default, upgrades itself
    try:
        with svc.db.sessions() as session:
            assert session.scalars(select(models.Account.login)).all() == ["old"]
        with svc.db.engine.connect() as connection:
            assert migrations.current_revisions(connection) == migrations.head_revisions()
    finally:
        svc.db.engine.dispose()


def test_production_start_refuses_a_database_behind_and_names_the_command(tmp_path, database_url, db, capsys,
                                                                           monkeypatch):
    """A PostgreSQL database at an older revision is refused: start-up says which command to run, no traceback."""
    if db.dialect != "postgresql":
        pytest.skip("the embedded SQLite database upgrades itself at start (tested above)")
    assert len(migrations.history()) > 1, "needs a revision after the first"
    migrations.upgrade(db, FIRST)
    with pytest.raises(migrations.SchemaBehind, match=f"at {FIRST}, this version needs .*run `agency db upgrade`"):
        build_agency(_settings(tmp_path, database_url))
    monkeypatch.setenv("AGENCY_DATABASE_URL", database_url)
    monkeypatch.setenv("AGENCY_DATA_DIR", str(tmp_path / "var"))
    assert main(["mail", "send"]) == 2
    error = capsys.readouterr().err
    assert "agency db upgrade" in error and "Traceback" not in error
    # AGENCY_DB_AUTO_UPGRADE=1 lets a PostgreSQL start upgrade by itself.
    build_agency(_settings(tmp_path, database_url, db_auto_upgrade=True)).db.engine.dispose()
    with db.engine.connect() as connection:
        assert migrations.current_revisions(connection) == migrations.head_revisions()
    with db.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffff'")  # code older than the db
    with pytest.raises(migrations.SchemaBehind, match="does not know"):
        build_agency(_settings(tmp_path, database_url))


def test_an_empty_database_is_created_at_start(tmp_path, database_url, db):
    svc = build_agency(_settings(tmp_path, database_url))
    try:
        assert "submissions" in inspect(svc.db.engine).get_table_names()
    finally:
        svc.db.engine.dispose()


ROWID_REVISION = "0014"  # the last revision whose handle tables are rowid tables on SQLite
KEY_ORDERED = ("handles", "handle_values")


def _declarations(connection) -> dict[str, str]:
    return {name: sql for name, sql in connection.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'index') AND sql IS NOT NULL")}


def _look_up_plan(connection) -> str:
    from agency.handles.protocol.directory import record_statement

    compiled = record_statement("sqlite").compile(dialect=connection.dialect)
    rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled),
                                      tuple(compiled.params.get(n, "10.5555/x") for n in compiled.positiontup))
    return " | ".join(row[3] for row in rows)


def test_handle_tables_are_stored_in_key_order_on_sqlite(db, database_url, tmp_path, monkeypatch, capsys):
    """Migration 0015: a resolution descends one B-tree per table (the key's), not the key's index and then the
    rowid table; the rows, the other indexes and a downgrade survive the rebuild."""
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL tables have no rowid: 0015 changes nothing there")
    migrations.upgrade(db, ROWID_REVISION)
    with db.engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO accounts (login, email, password_hash, created_at) "
                                   "VALUES ('a', 'a@example.org', 'x', CURRENT_TIMESTAMP)")
        for n in range(3):
            connection.exec_driver_sql(
                "INSERT INTO handles (key, name, prefix, version, revision, account_id, submission_id, created_at, "
                "updated_at) VALUES (?, ?, '10.5555', '1', 1, 1, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
                (f"10.5555/x{n}", f"10.5555/X{n}"))
            connection.exec_driver_sql("INSERT INTO handle_values (handle_key, idx, type, data, ttl, timestamp) "
                                       "VALUES (?, 1, 'URL', ?, 86400, CURRENT_TIMESTAMP)",
                                       (f"10.5555/x{n}", f"https://example.org/{n}".encode()))
        connection.exec_driver_sql("INSERT INTO withdrawals (handle_key, doi, active, reason, withdrawn_at) "
                                   "VALUES ('10.5555/x1', '10.5555/X1', 1, 'r', CURRENT_TIMESTAMP)")
    with db.engine.connect() as connection:
        before, rowid_tables = _snapshot(connection), _declarations(connection)
        assert "sqlite_autoindex_handles_1" in _look_up_plan(connection)

    migrations.upgrade(db, "0015")

    with db.engine.connect() as connection:
        declared = _declarations(connection)
        assert all(declared[t].upper().endswith("WITHOUT ROWID") for t in KEY_ORDERED)
        assert {n for n in declared if n.startswith("ix_")} >= {n for n in rowid_tables if n.startswith("ix_")}
        assert _look_up_plan(connection).startswith("SEARCH handles USING PRIMARY KEY (key=?) | "
                                                    "SEARCH handle_values USING PRIMARY KEY (handle_key=?)")
        assert _snapshot(connection) == before
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # on again after the upgrade

    monkeypatch.setenv("AGENCY_DATABASE_URL", database_url)
    monkeypatch.setenv("AGENCY_DATA_DIR", str(tmp_path / "var"))
    assert main(["db", "downgrade", ROWID_REVISION]) == 0  # an operator taking the upgrade back
    assert f"database at {ROWID_REVISION}\n" in capsys.readouterr().out
    with db.engine.connect() as connection:
        assert not any(_declarations(connection)[t].upper().endswith("WITHOUT ROWID") for t in KEY_ORDERED)
        assert "sqlite_autoindex_handles_1" in _look_up_plan(connection)
        assert _snapshot(connection) == before


def test_an_upgrade_that_would_leave_a_dangling_foreign_key_is_rolled_back_whole(db):
    """Revisions run with SQLite's foreign keys off (a table rebuild needs it): what they leave is checked before
    it is kept, and a refused upgrade takes back its DDL too (the copies a rebuild made), not only its rows."""
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL checks foreign keys during the revisions themselves")
    migrations.upgrade(db, ROWID_REVISION)
    with db.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # a row made dangling by hand, before the upgrade
        connection.exec_driver_sql("INSERT INTO alias_links (alias_key, target) VALUES ('10.5555/gone', '10.5555/y')")
        connection.commit()
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        before = _declarations(connection)

    with pytest.raises(migrations.ForeignKeysBroken, match=r"1 rows whose foreign key finds nothing.*alias_links"):
        migrations.upgrade(db)

    with db.engine.connect() as connection:
        assert migrations.current_revisions(connection) == (ROWID_REVISION,)
        assert _declarations(connection) == before


def test_an_unknown_revision_is_refused_with_a_message_and_changes_nothing(db, database_url, tmp_path, monkeypatch,
                                                                           capsys):
    """`agency db upgrade/downgrade` with a revision this agency does not ship: a line saying so, exit 2, no
    traceback, and the database stays where it was."""
    migrations.upgrade(db, ROWID_REVISION)
    monkeypatch.setenv("AGENCY_DATABASE_URL", database_url)
    monkeypatch.setenv("AGENCY_DATA_DIR", str(tmp_path / "var"))
    for action, revision in (("downgrade", "nonsense"), ("upgrade", "0999"), ("downgrade", "0999")):
        assert main(["db", action, revision]) == 2
        error = capsys.readouterr().err
        assert f"'{revision}'" in error and "nothing was changed" in error and "Traceback" not in error
        with db.engine.connect() as connection:
            assert migrations.current_revisions(connection) == (ROWID_REVISION,)


def _add_handles(connection, *names: str) -> None:
    for name in names:
        connection.execute(text(
            "INSERT INTO handles (key, name, prefix, version, revision, account_id, submission_id, created_at, "
            "updated_at) VALUES (:key, :name, :prefix, '1', 1, 1, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
            {"key": name.lower(), "name": name, "prefix": name.split("/")[0]})


def _kept_counts(connection) -> dict[str, int]:
    return {prefix: int(n) for prefix, n in connection.execute(text(
        "SELECT prefix, sum(handles) FROM handle_counts GROUP BY prefix"))}


def test_handle_counts_are_filled_by_the_upgrade_kept_after_it_and_gone_with_a_downgrade(db):
    """Migration 0016: the handles already there are counted once, later writes by the triggers; a downgrade
    takes the table and its triggers away (a write afterwards does not reach for the missing table)."""
    migrations.upgrade(db, "0015")
    with db.engine.begin() as connection:
        connection.execute(text("INSERT INTO accounts (login, email, password_hash, created_at) "
                                "VALUES ('a', 'a@example.org', 'x', CURRENT_TIMESTAMP)"))
        _add_handles(connection, "10.5555/A", "10.5555/B", "10.6666/C")
    migrations.upgrade(db)
    with db.engine.begin() as connection:
        assert _kept_counts(connection) == {"10.5555": 2, "10.6666": 1}
        _add_handles(connection, "10.6666/D", "10.7777/E")
        connection.execute(text("DELETE FROM handles WHERE key = '10.5555/a'"))
    with db.engine.begin() as connection:
        assert _kept_counts(connection) == {"10.5555": 1, "10.6666": 2, "10.7777": 1}
    _gone_after_downgrade(db, "0015", "handle_counts", lambda connection: _add_handles(connection, "10.5555/F"),
                          "handles", "key = '10.6666/c'", rows=4)


def _gone_after_downgrade(db, revision: str, counts: str, add, table: str, removed: str, rows: int) -> None:
    """Downgraded to ``revision``, the ``counts`` table is gone, and adding to and deleting from ``table``
    (whose triggers kept it) no longer reach for it."""
    migrations.downgrade(db, revision)
    with db.engine.begin() as connection:
        assert counts not in inspect(connection).get_table_names()
        add(connection)
        connection.execute(text(f"DELETE FROM {table} WHERE {removed}"))
        assert connection.scalar(text(f"SELECT count(*) FROM {table}")) == rows


def _alias_index(connection) -> list[dict]:
    return [i for i in inspect(connection).get_indexes("handle_values") if i["name"] == "ix_handle_values_alias"]


def test_the_alias_index_holds_the_aliases_alone_and_goes_with_a_downgrade(db):
    """Migration 0017: an index of the HS_ALIAS values (index 3) only, made over the values already there, and
    the values all kept."""
    migrations.upgrade(db, "0016")
    with db.engine.begin() as connection:
        connection.execute(text("INSERT INTO accounts (login, email, password_hash, created_at) "
                                "VALUES ('a', 'a@example.org', 'x', CURRENT_TIMESTAMP)"))
        _add_handles(connection, "10.5555/A", "10.5555/B")
        for key, idx, data in (("10.5555/a", 1, b"https://example.org/a"),
                               ("10.5555/b", 1, b"https://example.org/b"), ("10.5555/a", 3, b"10.5555/B")):
            connection.execute(text("INSERT INTO handle_values (handle_key, idx, type, data, ttl, timestamp) "
                                    "VALUES (:key, :idx, 'URL', :data, 86400, CURRENT_TIMESTAMP)"),
                               {"key": key, "idx": idx, "data": data})
    migrations.upgrade(db)
    with db.engine.begin() as connection:
        [index] = _alias_index(connection)
        assert index["column_names"] == ["handle_key"]
        where = index.get("dialect_options", {})
        assert "idx = 3" in str(where.get("postgresql_where") or where.get("sqlite_where")), index
        assert connection.scalar(text("SELECT count(*) FROM handle_values")) == 3
    migrations.downgrade(db, "0016")
    with db.engine.begin() as connection:
        assert _alias_index(connection) == []


def _add_records(connection, *keys: str) -> None:
    for key in keys:
        connection.execute(text(
            "INSERT INTO metadata_records (doi_key, doi, prefix, content_type, body_type, version, batch_folder, "
            "depositor_login, indexed_at) VALUES (:key, :key, '10.5555', 'journal_article', 'journal', '1', 'f', 'a', "
            "CURRENT_TIMESTAMP)"), {"key": key})


def test_the_record_count_is_filled_by_the_upgrade_kept_after_it_and_gone_with_a_downgrade(db):
    """Migration 0018: on PostgreSQL the records already indexed are counted once, later ones by the triggers; a
    downgrade takes the table and its triggers away (a write afterwards does not reach for the missing table)."""
    migrations.upgrade(db, "0017")
    with db.engine.begin() as connection:
        _add_records(connection, "10.5555/A", "10.5555/B")
    migrations.upgrade(db)
    with db.engine.begin() as connection:
        _add_records(connection, "10.5555/C")
        connection.execute(text("DELETE FROM metadata_records WHERE doi_key = '10.5555/A'"))
    with db.engine.begin() as connection:
        kept = connection.scalar(text("SELECT sum(records) FROM metadata_counts"))
        assert kept == (2 if db.dialect == "postgresql" else None)  # SQLite counts the records (no triggers)
    _gone_after_downgrade(db, "0017", "metadata_counts", lambda connection: _add_records(connection, "10.5555/D"),
                          "metadata_records", "doi_key = '10.5555/B'", rows=2)
