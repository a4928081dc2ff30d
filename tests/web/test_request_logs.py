"""One line per request (method, path without credentials, status, time, id, account); failed sign-ins logged."""

from __future__ import annotations

import logging

from conftest import basic_headers


def test_a_request_line_names_method_path_status_time_id_and_account(client, alice, caplog):
    caplog.set_level(logging.INFO, logger="agency.requests")
    response = client.get("/servlet/query?usr=alice&pwd=alice-password&format=piped&qdata=x",
                          headers={"X-Request-Id": "trace-123"})
    assert response.headers["X-Request-Id"] == "trace-123"
    (record,) = [r for r in caplog.records if r.name == "agency.requests"]
    line = record.getMessage()
    assert line.startswith("GET /servlet/query?usr=alice&pwd=[redacted]&format=piped&qdata=x ")
    assert f" {response.status_code} " in line and "ms id=trace-123 account=alice" in line
    assert "alice-password" not in line
    assert record.fields["account"] == "alice" and record.fields["status"] == response.status_code


def test_a_request_id_is_made_when_none_or_a_bad_one_is_given(client):
    made = client.get("/servlet/query", headers={"X-Request-Id": "bad id; <script>"}).headers["X-Request-Id"]
    assert len(made) == 16 and made.isalnum()  # 8 random bytes in hex
    assert client.get("/servlet/query").headers["X-Request-Id"] != made


def test_a_failed_sign_in_is_logged_with_login_and_address(client, alice, caplog):
    caplog.set_level(logging.INFO)
    response = client.post("/v1/deposits", data=b"<x/>", headers=basic_headers("alice", "wrong-password"),
                           environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert response.status_code == 401
    (record,) = [r for r in caplog.records if r.name == "agency.sign_in"]
    assert "login='alice'" in record.getMessage() and "address=192.0.2.7" in record.getMessage()
    assert "wrong-password" not in caplog.text
    request_line = [r for r in caplog.records if r.name == "agency.requests"][-1]
    assert request_line.fields["account"] == "-"
