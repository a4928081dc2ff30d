"""Hostile paths get 400 or 404 with a clear message, never a stack trace; a database failure gets 503."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from agency.handles import resolver

HOSTILE = [
    ("/10.5555/" + "a" * 5000, 400, "characters long"),
    ("/%FF%FE", 400, "not valid UTF-8"),
    ("/10.5555/%C3", 400, "not valid UTF-8"),     # truncated sequence
    ("/10.5555/%ED%A0%80", 400, "not valid UTF-8"),  # an encoded surrogate
    ("/10.5555/a%00b", 400, "control character"),
    ("/10.5555/a%1Bb", 400, "control character"),
    ("/10.5555/a%7Fb", 400, "control character"),
    ("/10.5555/a%C2%85b", 400, "control character"),  # U+0085, a C1 control
    ("/../../etc/passwd", 404, "not a DOI"),
    ("/..%2F..%2Fetc%2Fpasswd", 404, "not a DOI"),
    ("/10.5555/..%2F..%2F..%2Fetc%2Fpasswd", 404, "cannot be found"),
    ("/%2e%2e/%2e%2e/etc/passwd", 404, "not a DOI"),
    ("/10.5555/%25%25%25", 404, "cannot be found"),  # "%%%": not decodable twice, still just a suffix
]


def test_hostile_resolution_paths(client, alice):
    for path, status, words in HOSTILE:
        response = client.get(path)
        text = response.get_data(as_text=True)
        assert response.status_code == status, (path, text[:300])
        assert words in text, path
        assert "Traceback" not in text and "root:" not in text
        as_json = client.get(path, headers={"Accept": "application/json"})
        assert as_json.status_code == status and words in as_json.get_json()["error"], path


def test_hostile_handle_api_paths(client, alice):
    for path, status, words in HOSTILE:
        response = client.get("/api/handles" + path)
        body = response.get_json()
        if status == 400:
            assert response.status_code == 400, path
            assert body["responseCode"] == 102 and words in body["message"], path
        else:  # well-formed text that names no handle served here
            assert response.status_code in (400, 404) and body["responseCode"] in (100, 102, 301), path


def test_database_failure_is_503_not_a_stack_trace(client, alice, monkeypatch):
    def broken(*_args, **_kwargs):
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    monkeypatch.setattr(resolver.FastLookUp, "_row", broken)
    response = client.get("/10.5555/abc")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    text = response.get_data(as_text=True)
    assert "try again" in text and "database is locked" not in text and "Traceback" not in text


def test_handle_api_database_failure_is_response_code_2(client, alice, monkeypatch):
    def broken(*_args, **_kwargs):
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(resolver, "handle_record", broken)
    response = client.get("/api/handles/10.5555/abc")
    assert response.status_code == 500
    body = response.get_json()
    assert body["responseCode"] == 2 and "connection refused" not in body["message"]


def test_only_get_and_head(client, alice):
    assert client.post("/10.5555/abc").status_code == 405
    # DELETE is a Handle.Net REST write now: refused over plain HTTP, never a 405 or a deletion.
    assert client.delete("/api/handles/10.5555/abc").status_code == 403
    assert client.patch("/api/handles/10.5555/abc").status_code == 405


def test_fast_look_up_reports_driver_errors_as_sqlalchemy_errors(tmp_path):
    from sqlalchemy.exc import DBAPIError

    from agency.db import open_database

    empty = open_database(f"sqlite:///{tmp_path / 'no-tables.db'}")  # no handles table at all
    with pytest.raises(DBAPIError):
        resolver.FastLookUp(empty.engine)("10.5555/abc")
    empty.engine.dispose()


def test_fast_look_up_connections_close_with_the_engine(svc, alice):
    look_up = resolver.FastLookUp(svc.db.engine)
    assert look_up("10.5555/none") is None
    assert len(look_up._open) == 1 and svc.db.engine.pool.checkedout() == 0  # detached: no pool slot
    svc.db.engine.dispose()
    assert look_up._open == []
    assert look_up("10.5555/none") is None  # and it reconnects when used again
    look_up.close()
