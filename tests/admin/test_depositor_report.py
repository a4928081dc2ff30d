"""The depositor report: GET /v1/reports/depositor and `agency report depositor`, CSV and JSON, streamed."""

from __future__ import annotations

import csv
import io
import json

import pytest

from batchgen import Article, deposit_xml
from conftest import basic_headers
from recordsdata import register

from agency.cli import main

ALICE = basic_headers("alice", "alice-password", None)


@pytest.fixture
def environment(cli_environment):
    return cli_environment


@pytest.fixture
def records(environment, client, alice, bob):
    svc = environment
    first = register(svc, client, ["10.5555/r1", "10.5555/r2", "10.5555/r3"], timestamp="20240101000000")
    client.post("/v1/deposits", data=deposit_xml([Article("10.5555/r1", title="Renamed")], timestamp="20240202000000"),
                headers=basic_headers("alice", "alice-password"))
    svc.worker.run_until_idle()
    register(svc, client, ["10.32013/other"])
    register(svc, client, ["10.6666/b"], login="bob", password="bob-password")
    svc.mddb.run(mail=False)
    client.post("/v1/aliases", json={"primary": "10.5555/r3", "alias": "10.5555/r2"}, headers=ALICE)
    assert main(["handles", "withdraw", "10.5555/r3", "--reason", "gone"]) == 0
    return first


def test_csv_lists_each_doi_with_its_state(records, client):
    response = client.get("/v1/reports/depositor?prefix=10.5555", headers=ALICE)
    assert response.status_code == 200 and response.mimetype == "text/csv" and response.is_streamed
    rows = list(csv.DictReader(io.StringIO(response.data.decode())))
    assert [r["doi"] for r in rows] == ["10.5555/r1", "10.5555/r2", "10.5555/r3"]
    r1, r2, r3 = rows
    assert r1["title"] == "Renamed" and r1["version"] == "20240202000000" and r1["prefix"] == "10.5555"
    assert r1["first_deposit"] <= r1["last_deposit"] and r1["last_submission_id"] != r2["last_submission_id"]
    assert r2["state"] == "alias" and r2["alias_of"] == "10.5555/r3"
    assert r3["state"] == "withdrawn" and r1["state"] == "active"


def test_json_and_title_filter(records, client):
    body = json.loads(client.get("/v1/reports/depositor?prefix=10.5555&format=json&title=renam", headers=ALICE).data)
    assert body["prefix"] == "10.5555" and body["count"] == 1 and body["dois"][0]["doi"] == "10.5555/r1"
    accept = client.get("/v1/reports/depositor?prefix=10.5555", headers=ALICE | {"Accept": "application/json"})
    assert json.loads(accept.data)["count"] == 3


def test_a_prefix_the_account_does_not_own_is_404_and_tells_nothing(records, client):
    for prefix in ("10.6666", "10.9999"):  # bob's, and nobody's: the same answer
        response = client.get(f"/v1/reports/depositor?prefix={prefix}", headers=ALICE)
        assert response.status_code == 404
        assert response.get_json()["error"]["message"] == f"No prefix {prefix} for this account."
        assert b"10.6666/b" not in response.data
    assert client.get("/v1/reports/depositor?prefix=10.5555").status_code == 401
    assert client.get("/v1/reports/depositor", headers=ALICE).status_code == 400
    assert client.get("/v1/reports/depositor?prefix=10.5555&format=xml", headers=ALICE).status_code == 400
    assert client.get("/v1/reports/depositor?prefix=10.5555&title=" + "x" * 300, headers=ALICE).status_code == 400


def test_cli_report(records, tmp_path, capsys):
    assert main(["report", "depositor", "--prefix", "10.5555"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("doi,title,prefix") and len(lines) == 4
    out = tmp_path / "r.json"
    assert main(["report", "depositor", "--prefix", "10.32013", "--format", "json", "--output", str(out)]) == 0
    assert [d["doi"] for d in json.loads(out.read_text())["dois"]] == ["10.32013/other"]
    assert main(["report", "depositor", "--prefix", "10.5555", "--account", "bob"]) == 2
    assert main(["report", "depositor", "--prefix", "10.7777"]) == 2
