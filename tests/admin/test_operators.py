"""`agency operators create NAME`: staff accounts for the /staff/ console, audited, password from stdin."""

from __future__ import annotations

import io

import pytest

from agency.admin.audit import events
from agency.admin.operators import authenticate_operator
from agency.cli import main


@pytest.fixture
def environment(cli_environment, monkeypatch):
    monkeypatch.setenv("AGENCY_OPERATOR", "root-admin")
    return cli_environment


def test_create_operator_from_the_command_line(environment, monkeypatch, capsys):
    svc = environment
    monkeypatch.setattr("sys.stdin", io.StringIO("staff-password\n"))
    assert main(["operators", "create", "olga"]) == 0
    assert "created operator olga" in capsys.readouterr().out
    with svc.db.sessions() as session:
        assert authenticate_operator(session, svc.passwords, "olga", "staff-password") is not None
        assert authenticate_operator(session, svc.passwords, "olga", "wrong-password") is None
        trail = [(e.actor, e.action, e.subject) for e in events(session, subject="operator:olga")]
    assert trail == [("operator:root-admin", "operator.create", "operator:olga")]
    assert "staff-password" not in repr(trail)


@pytest.mark.parametrize("name, password, message", [
    ("olga", "short", "at least 8 characters"),
    ("bad name!", "long-enough-password", "must be 1-128 letters"),
])
def test_bad_operator_requests_are_refused(environment, monkeypatch, capsys, name, password, message):
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    assert main(["operators", "create", name]) == 2
    assert message in capsys.readouterr().err


def test_an_operator_name_is_taken_once(environment, monkeypatch, capsys):
    for expected in (0, 2):
        monkeypatch.setattr("sys.stdin", io.StringIO("staff-password\n"))
        assert main(["operators", "create", "olga"]) == expected
    assert "exists already" in capsys.readouterr().err
