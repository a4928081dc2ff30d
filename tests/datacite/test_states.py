"""DataCite's DOI states through the MDS operations, and the precedence rules between the two interfaces."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from agency.admin.audit import Actor
from agency.datacite.states import DRAFT, FINDABLE, REGISTERED, MdsRefused, convert
from agency.handles.store import CROSSREF, DATACITE, find_handle, resolve_url
from agency.models import AuditEvent
from batchgen import Article, deposit_xml
from dcgen import record_xml

DOI = "10.5555/dc-1"


def refused(call, *args) -> MdsRefused:
    with pytest.raises(MdsRefused) as exc:
        call(*args)
    return exc.value


def test_draft_is_not_in_the_handle_store_and_can_be_deleted(svc, alice):
    with svc.db.transaction() as session:
        stored = svc.mds.store_metadata(session, alice, record_xml())
        assert (stored.doi, stored.state, stored.created) == (DOI, DRAFT, True)
    with svc.db.transaction() as session:
        assert find_handle(session, DOI) is None
        assert svc.mds.url_of(session, alice, DOI) is None  # known, not minted
        assert list(svc.mds.dois(session, alice)) == []
        svc.mds.delete_draft(session, alice, DOI)
    with svc.db.transaction() as session:
        assert refused(svc.mds.metadata, session, alice, DOI).status == 404


def test_mint_hide_and_show_again(svc, alice):
    with svc.db.transaction() as session:
        svc.mds.store_metadata(session, alice, record_xml())
        assert svc.mds.register_url(session, alice, DOI, "https://data.example.org/1") == FINDABLE
    with svc.db.transaction() as session:
        assert resolve_url(session, DOI) == "https://data.example.org/1"
        assert find_handle(session, DOI).interface == DATACITE
        assert svc.mds.hide(session, alice, DOI) == REGISTERED
        assert svc.mds.url_of(session, alice, DOI) == "https://data.example.org/1"  # still resolves
        assert refused(svc.mds.delete_draft, session, alice, DOI).status == 405
        assert list(svc.mds.dois(session, alice)) == [DOI]
    with svc.db.transaction() as session:
        assert svc.mds.store_metadata(session, alice, record_xml(title="New")).state == FINDABLE
        assert b"New" in svc.mds.metadata(session, alice, DOI)


def test_last_write_wins_for_mds(svc, alice):
    with svc.db.transaction() as session:
        svc.mds.store_metadata(session, alice, record_xml())
        svc.mds.register_url(session, alice, DOI, "https://data.example.org/1")
    for url in ("ftp://files.example.org/2", "https://data.example.org/3"):
        with svc.db.transaction() as session:
            svc.mds.register_url(session, alice, DOI, url)
    with svc.db.transaction() as session:
        assert resolve_url(session, DOI) == "https://data.example.org/3"
        assert find_handle(session, DOI).revision == 3


def test_url_needs_metadata_first(svc, alice):
    with svc.db.transaction() as session:
        assert refused(svc.mds.register_url, session, alice, DOI, "https://x.example.org/").status == 412


@pytest.mark.parametrize("url", ["mailto:a@example.org", "javascript:alert(1)", "https://", "https://a b.org/",
                                 "/relative/path"])
def test_url_schemes(svc, alice, url):
    with svc.db.transaction() as session:
        svc.mds.store_metadata(session, alice, record_xml())
        problem = refused(svc.mds.register_url, session, alice, DOI, url)
    assert problem.status == 400 and "url=" in problem.message


def test_another_accounts_prefix(svc, alice, bob):
    with svc.db.transaction() as session:
        problem = refused(svc.mds.store_metadata, session, bob, record_xml())
    assert problem.status == 403 and "10.5555" in problem.message and "10.6666" in problem.message


def test_mds_refuses_a_crossref_doi_and_crossref_refuses_an_mds_doi(svc, alice, deposit):
    _, records = deposit(deposit_xml([Article("10.5555/cr-1")]))
    assert records[0]["status"] == "Success"
    with svc.db.transaction() as session:
        problem = refused(svc.mds.store_metadata, session, alice, record_xml("10.5555/cr-1"))
    assert problem.status == 403 and "Crossref interface" in problem.message
    with svc.db.transaction() as session:
        svc.mds.store_metadata(session, alice, record_xml())
        svc.mds.register_url(session, alice, DOI, "https://data.example.org/1")
    _, records = deposit(deposit_xml([Article(DOI)], timestamp="20990101000000", batch_id="b2"))
    assert records[0]["status"] == "Failure" and "DataCite MDS API" in records[0]["msg"]
    with svc.db.transaction() as session:
        assert resolve_url(session, DOI) == "https://data.example.org/1"


def test_operator_converts_a_crossref_doi(svc, alice, deposit):
    deposit(deposit_xml([Article("10.5555/cr-1")]))
    with svc.db.transaction() as session:
        convert(session, "10.5555/cr-1", DATACITE, Actor.operator("ops"), reason="moved to the data repository")
    with svc.db.transaction() as session:
        assert svc.mds.store_metadata(session, alice, record_xml("10.5555/cr-1")).state == FINDABLE
        assert svc.mds.register_url(session, alice, "10.5555/cr-1", "https://d.example.org/") == FINDABLE
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "doi.convert")).one()
        assert event.subject == "10.5555/cr-1"
        convert(session, "10.5555/cr-1", CROSSREF, Actor.operator("ops"))
    _, records = deposit(deposit_xml([Article("10.5555/cr-1")], timestamp="20990101000000", batch_id="b3"))
    assert records[0]["status"] == "Success"


def test_convert_command(svc, alice, deposit, monkeypatch, capsys):
    from agency.cli import main

    deposit(deposit_xml([Article("10.5555/cr-2")]))
    monkeypatch.setenv("AGENCY_DATABASE_URL", svc.settings.effective_database_url)
    monkeypatch.setenv("AGENCY_DATA_DIR", str(svc.settings.data_dir))
    monkeypatch.setenv("AGENCY_BATCH_DIR", str(svc.settings.batch_dir))
    assert main(["datacite", "convert", "10.5555/cr-2", "--to", "datacite", "--reason", "r", "--operator", "o"]) == 0
    assert "now managed through datacite" in capsys.readouterr().out
    assert main(["datacite", "convert", "10.5555/cr-2", "--to", "datacite"]) == 1
    assert "already managed" in capsys.readouterr().err
    assert main(["datacite", "convert", "10.5555/none", "--to", "crossref"]) == 1
    with svc.db.transaction() as session:
        assert svc.mds.register_url(session, alice, "10.5555/cr-2", "https://d.example.org/") == "registered"
