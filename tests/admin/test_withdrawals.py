"""Withdrawal: `agency handles withdraw|reinstate`, the tombstone page, and what a withdrawn DOI refuses."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from batchgen import Article, deposit_xml
from conftest import basic_headers
from recordsdata import funding_item, post_resources, register, resources_xml

from agency.cli import main
from agency.models import AuditEvent, Handle, MetadataRecord

ALICE = basic_headers("alice", "alice-password", None)


@pytest.fixture
def environment(cli_environment, monkeypatch):
    monkeypatch.setenv("AGENCY_OPERATOR", "ra-staff")
    return cli_environment


def test_withdraw_serves_a_tombstone_keeps_the_record_and_is_reversible(environment, client, alice, capsys):
    svc = environment
    register(svc, client, ["10.5555/gone"])
    svc.mddb.run(mail=False)
    assert main(["handles", "withdraw", "10.5555/GONE", "--reason", "Duplicate of 10.5555/kept"]) == 0
    redirect = client.get("/10.5555/gone")
    assert redirect.status_code == 302 and redirect.headers["Location"] == "http://localhost/withdrawn/10.5555/gone"
    page = client.get("/withdrawn/10.5555/gone")
    text = page.data.decode()
    assert page.status_code == 410
    assert "10.5555/gone" in text and "A study of things" in text and "Duplicate of 10.5555/kept" in text
    with svc.db.sessions() as session:
        assert session.get(Handle, "10.5555/GONE") is not None
        assert session.scalar(select(MetadataRecord.title).where(MetadataRecord.doi_key == "10.5555/GONE"))
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "doi.withdraw")).one()
        assert event.actor == "operator:ra-staff" and event.reason == "Duplicate of 10.5555/kept"
        assert event.before == {"url": "https://example.org/articles/gone"}
    assert main(["handles", "withdraw", "10.5555/gone", "--reason", "again"]) == 2
    assert "withdrawn already" in capsys.readouterr().err
    csl = {"Accept": "application/vnd.citationstyles.csl+json"}
    with svc.db.sessions() as session:  # the metadata index follows the handle: metadata pages too
        assert session.scalar(select(MetadataRecord.url).where(MetadataRecord.doi_key == "10.5555/GONE")) == \
            "http://localhost/withdrawn/10.5555/gone"
    assert client.get("/10.5555/gone", headers=csl).get_json()["URL"] == "http://localhost/withdrawn/10.5555/gone"
    assert main(["handles", "reinstate", "10.5555/gone", "--reason", "withdrawn by mistake"]) == 0
    assert client.get("/10.5555/gone").headers["Location"] == "https://example.org/articles/gone"
    assert client.get("/10.5555/gone", headers=csl).get_json()["URL"] == "https://example.org/articles/gone"
    with svc.db.sessions() as session:
        assert session.scalar(select(MetadataRecord.url).where(MetadataRecord.doi_key == "10.5555/GONE")) == \
            "https://example.org/articles/gone"
    assert client.get("/withdrawn/10.5555/gone").status_code == 404
    with svc.db.sessions() as session:
        assert session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()[-2:] == [
            "doi.withdraw", "doi.reinstate"]


def test_a_withdrawn_doi_refuses_deposits_resources_and_url_updates(environment, client, alice):
    svc = environment
    register(svc, client, ["10.5555/w"])
    assert main(["handles", "withdraw", "10.5555/w", "--reason", "retracted and removed"]) == 0
    response = client.post("/v1/deposits", data=deposit_xml([Article("10.5555/w")], timestamp="20300101000000"),
                           headers=basic_headers("alice", "alice-password"))
    svc.worker.run_until_idle()
    record = client.get(response.headers["Location"], headers=ALICE).get_json()["records"][0]
    assert record["status"] == "Failure" and "withdrawn" in record["msg"]
    body = post_resources(svc, client, resources_xml([funding_item("10.5555/w")]))
    assert "records" in body, body
    assert body["records"][0]["status"] == "Failure" and "withdrawn" in body["records"][0]["msg"]
    assert client.get("/10.5555/w").headers["Location"].endswith("/withdrawn/10.5555/w")


def test_withdraw_needs_a_reason_and_a_registered_doi(environment, capsys):
    assert main(["handles", "withdraw", "10.5555/none", "--reason", "x"]) == 2
    assert "not registered" in capsys.readouterr().err
    assert main(["handles", "withdraw", "10.5555/none", "--reason", "  "]) == 2
    assert "reason is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["handles", "withdraw", "10.5555/none"])
    assert main(["handles", "reinstate", "10.5555/none", "--reason", "x"]) == 2
