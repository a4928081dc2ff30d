"""Handle.Net's SQL storage tables as views: the manual's default statements, run verbatim, see what the
protocol server answers."""

from __future__ import annotations

import uuid

import pytest
from batchgen import Article
from sqlalchemy import text, update

from agency.handles.protocol.directory import StoreDirectory
from agency.handles.sql_storage import create_storage_views
from agency.handles.store import parse_refs
from agency.handles.values import HandleValue
from agency.models import Handle
from hdl_wire import make_prefix_record
from resolve_data import register

# Handle.Net manual 8.1.4, default statements (JDBC's "?" placeholders written as psycopg's "%s").
GET_HANDLE = ("select idx, type, data, ttl_type, ttl, timestamp, refs, admin_read, admin_write, pub_read, "
              "pub_write from handles where handle = ?")
HANDLE_EXISTS = "select count(*) from handles where handle = ?"
SCAN_BY_PREFIX = "select distinct handle from handles where handle like ?"
SCAN_NAS = "select distinct na from nas"
HAVE_NA = "select count(*) from nas where na = ?"


def run(connection, statement: str, *parameters):
    return connection.exec_driver_sql(statement.replace("?", "%s"), tuple(parameters)).all()


def test_stock_server_statements_see_the_protocol_records(client, svc, alice, bob, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("Handle.Net SQL storage views are PostgreSQL-only (run with AGENCY_TEST_DATABASE_URL)")
    register(client, svc, [Article("10.5555/Sql.1", url="https://example.org/sql")])
    make_prefix_record(svc)
    schema = f"hn_{uuid.uuid4().hex[:10]}"
    create_storage_views(svc.db.engine, schema, svc.settings.handle_ttl)
    directory = StoreDirectory(svc.db, svc.settings.handle_ttl)
    try:
        with svc.db.engine.connect() as connection:
            connection.execute(text(f"SET search_path TO {schema}, public, "
                                    + connection.execute(text("SELECT current_schema()")).scalar()))
            for handle in ("10.5555/SQL.1", "0.NA/10.5555"):
                rows = run(connection, GET_HANDLE, handle.encode())
                from_sql = sorted((HandleValue(r[0], bytes(r[1]).decode(), bytes(r[2]), r[4], r[3], r[5],
                                               parse_refs(r[6]), r[7], r[8], r[9], r[10]) for r in rows),
                                  key=lambda v: v.index)
                assert from_sql == sorted(directory.values(handle), key=lambda v: v.index), handle
                assert run(connection, HANDLE_EXISTS, handle.encode()) == [(len(rows),)]
            secret = [r for r in run(connection, GET_HANDLE, b"0.NA/10.5555") if r[0] == 300]
            assert secret and secret[0][9] is False  # pub_read false: a stock server hides it too
            assert run(connection, HANDLE_EXISTS, b"10.5555/NOPE") == [(0,)]
            listed = {bytes(r[0]) for r in run(connection, SCAN_BY_PREFIX, b"10.5555/%")}
            assert listed == {b"10.5555/SQL.1"}
            assert {bytes(r[0]) for r in run(connection, SCAN_NAS)} == {b"0.NA/10.5555", b"0.NA/10.6666",
                                                                        b"0.NA/10.32013"}
            assert run(connection, HAVE_NA, b"0.NA/10.5555") == [(1,)]
            # A DOI transferred to another registrant: its HS_ADMIN names the new owner's admin group in
            # the view as in the protocol server's answer (a stock server must not keep the old owner's).
            with svc.db.transaction() as session:  # agency's own table ("handles" above is the view)
                session.execute(update(Handle).where(Handle.key == "10.5555/SQL.1").values(account_id=bob.id))
            rows = run(connection, GET_HANDLE, b"10.5555/SQL.1")
            (admin,) = [bytes(r[2]) for r in rows if r[0] == 100]
            assert b"0.NA/10.6666" in admin
            (served,) = [v for v in directory.values("10.5555/SQL.1") if v.index == 100]
            assert served.data == admin
    finally:
        with svc.db.engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))


def test_views_need_postgresql(svc, database_url):
    if database_url.startswith("postgresql"):
        pytest.skip("the SQLite refusal is checked on SQLite")
    with pytest.raises(RuntimeError, match="PostgreSQL"):
        create_storage_views(svc.db.engine, "handle_net", 86400)
    with pytest.raises(ValueError):
        from agency.handles.sql_storage import storage_view_statements

        storage_view_statements("x; drop table handles", 1)
