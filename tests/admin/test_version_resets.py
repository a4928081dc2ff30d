"""Version resets: `agency handles reset-version (DOI... | --prefix | --submission) --to N --reason`."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from batchgen import Article, deposit_xml
from conftest import basic_headers
from recordsdata import register

from agency.cli import main
from agency.models import AuditEvent, Handle, VersionReset

ALICE = basic_headers("alice", "alice-password", None)


@pytest.fixture
def environment(cli_environment):
    return cli_environment


def _deposit(svc, client, dois, timestamp):
    response = client.post("/v1/deposits", data=deposit_xml([Article(d) for d in dois], timestamp=timestamp),
                           headers=basic_headers("alice", "alice-password"))
    svc.worker.run_until_idle()
    return client.get(response.headers["Location"], headers=ALICE).get_json()["records"]


def test_unix_seconds_pass_after_a_reset_and_the_log_says_so(environment, client, alice, capsys):
    svc = environment
    register(svc, client, ["10.5555/r1", "10.5555/r2"], timestamp="20240101000000")
    refused = _deposit(svc, client, ["10.5555/r1"], "1735689600")
    assert refused[0]["status"] == "Failure" and "Unix seconds" in refused[0]["msg"]
    assert main(["handles", "reset-version", "10.5555/r1", "--to", "0", "--reason", "ticket 42: Unix timestamps"]) == 0
    assert "1 DOI" in capsys.readouterr().out
    records = _deposit(svc, client, ["10.5555/r1", "10.5555/r2"], "1735689600")
    assert records[0]["status"] == "Success"
    assert "stored version was reset from 20240101000000 to 0" in records[0]["msg"]
    assert records[1]["status"] == "Failure"  # not reset
    again = _deposit(svc, client, ["10.5555/r1"], "1735689700")
    assert again[0]["msg"] == "Successfully updated"  # said once, by the next deposit only
    with svc.db.sessions() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "doi.reset_version")).one()
        assert event.reason == "ticket 42: Unix timestamps" and event.after == {"version": "0", "changed": 1}
        assert session.scalars(select(VersionReset.noted_submission_id)).one() is not None


def test_by_prefix_and_by_submission_only_lowers(environment, client, alice):
    svc = environment
    first = register(svc, client, ["10.5555/p1", "10.5555/p2"], timestamp="20240101000000")
    register(svc, client, ["10.32013/q1"], timestamp="5")
    assert main(["handles", "reset-version", "--prefix", "10.32013", "--to", "10", "--reason", "r"]) == 0
    assert main(["handles", "reset-version", "--submission", str(first["submission_id"]), "--to", "100",
                 "--reason", "r"]) == 0
    with svc.db.sessions() as session:
        versions = dict(session.execute(select(Handle.key, Handle.version)).all())
    assert versions["10.32013/Q1"].lstrip("0") == "5"  # 10 would have raised it: untouched
    assert versions["10.5555/P1"].lstrip("0") == versions["10.5555/P2"].lstrip("0") == "100"


def test_a_reset_needs_a_reason_a_version_and_one_selection(environment, capsys):
    with pytest.raises(SystemExit):
        main(["handles", "reset-version", "10.5555/x", "--to", "0"])
    assert main(["handles", "reset-version", "10.5555/x", "--to", "0", "--reason", " "]) == 2
    assert "reason is required" in capsys.readouterr().err
    assert main(["handles", "reset-version", "10.5555/x", "--to", "soon", "--reason", "r"]) == 2
    assert "--to" in capsys.readouterr().err
    assert main(["handles", "reset-version", "--to", "0", "--reason", "r"]) == 2
    assert main(["handles", "reset-version", "10.5555/x", "--prefix", "10.5555", "--to", "0", "--reason", "r"]) == 2
    assert main(["handles", "reset-version", "10.5555/x", "--to", "0", "--reason", "r"]) == 2
    assert "Not registered" in capsys.readouterr().err
