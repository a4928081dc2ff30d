"""Findable DataCite records are in the metadata database: citations by content negotiation and DOI queries."""

from __future__ import annotations

import json

from agency.models import MetadataRelation
from conftest import basic_headers
from dcgen import record_xml
from sqlalchemy import select

DOI = "10.5555/dc-1"
RELATED = ('<relatedIdentifiers><relatedIdentifier relatedIdentifierType="DOI" relationType="IsSupplementTo">'
           '10.5555/article-9</relatedIdentifier></relatedIdentifiers>')


def mint(svc, alice, xml: bytes = record_xml(extra=RELATED)) -> None:
    with svc.db.transaction() as session:
        svc.mds.store_metadata(session, alice, xml)
        svc.mds.register_url(session, alice, DOI, "https://data.example.org/1")


def test_findable_record_served_as_csl_bibtex_and_ris(svc, alice, client):
    with svc.db.transaction() as session:
        svc.mds.store_metadata(session, alice, record_xml())
    assert client.get(f"/{DOI}", headers={"Accept": "application/vnd.citationstyles.csl+json"}).status_code == 404
    mint(svc, alice)
    csl = json.loads(client.get(f"/{DOI}", headers={"Accept": "application/vnd.citationstyles.csl+json"}).data)
    assert csl["type"] == "dataset" and csl["title"] == "A data set" and csl["publisher"] == "Agency Press"
    assert csl["author"] == [{"family": "Doe", "given": "Jane"}]
    assert csl["issued"]["date-parts"][0][0] == 2024
    bibtex = client.get(f"/{DOI}", headers={"Accept": "application/x-bibtex"}).text
    assert "A data set" in bibtex and "2024" in bibtex
    ris = client.get(f"/{DOI}", headers={"Accept": "application/x-research-info-systems"}).text
    assert "TI  - A data set" in ris
    with svc.db.sessions() as session:
        relation = session.scalars(select(MetadataRelation)).one()
    assert (relation.identifier, relation.relation_type) == ("10.5555/article-9", "IsSupplementTo")


def test_hidden_record_leaves_the_index_and_comes_back(svc, alice, client):
    mint(svc, alice)
    accept = {"Accept": "application/vnd.citationstyles.csl+json"}
    with svc.db.transaction() as session:
        svc.mds.hide(session, alice, DOI)
    assert client.get(f"/{DOI}", headers=accept).status_code == 204  # resolves, no public metadata
    with svc.db.transaction() as session:
        svc.mds.store_metadata(session, alice, record_xml(title="Second title"))
    assert json.loads(client.get(f"/{DOI}", headers=accept).data)["title"] == "Second title"


def test_doi_query_finds_a_datacite_record(svc, alice, client):
    mint(svc, alice)
    response = client.post("/v1/queries", data=f"||||||||key1|{DOI}\n".encode(),
                           headers=basic_headers("alice", "alice-password", "text/plain"))
    assert response.status_code == 200, response.text
    assert response.text == f"|||Doe||||2024||full_text|key1|{DOI}\n"  # described from the indexed record


def test_datacite_xml_by_content_negotiation(svc, alice, client):
    accept = {"Accept": "application/vnd.datacite.datacite+xml"}
    mint(svc, alice)
    response = client.get(f"/{DOI}", headers=accept)
    assert response.status_code == 200 and response.data == record_xml(extra=RELATED)
    assert response.headers["Content-Type"] == "application/vnd.datacite.datacite+xml"
    with svc.db.transaction() as session:
        svc.mds.hide(session, alice, DOI)
    assert client.get(f"/{DOI}", headers=accept).status_code == 204  # not public while hidden
