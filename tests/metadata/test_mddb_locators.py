"""Locators: the (ISSN, volume, first page) rows that journal queries look up first."""

from __future__ import annotations

from sqlalchemy import select

from agency.models import MetadataLocator
from batchgen import Article, deposit_xml
from mddb_pipeline import deposit


def locators(svc) -> set[tuple]:
    with svc.db.sessions() as session:
        return {tuple(row) for row in session.execute(select(
            MetadataLocator.issn, MetadataLocator.volume_key, MetadataLocator.first_page_key, MetadataLocator.doi_key))}


def test_each_indexed_article_is_findable_by_issn_volume_and_page(svc, client, alice):
    deposit(svc, client, deposit_xml([Article("10.5555/a", first_page="e15"), Article("10.5555/b", first_page="7")],
                                     issn="1234-5679"))
    svc.mddb.run(mail=False)
    assert locators(svc) == {("1234-5679", "1", "15", "10.5555/A"), ("1234-5679", "1", "7", "10.5555/B")}


def test_a_newer_deposit_replaces_the_locators(svc, client, alice):
    deposit(svc, client, deposit_xml([Article("10.5555/a", first_page="3")], issn="1234-5679",
                                     timestamp="20240101000000"))
    svc.mddb.run(mail=False)
    deposit(svc, client, deposit_xml([Article("10.5555/a", first_page="9")], issn="0317-8471",
                                     timestamp="20240201000000"))
    svc.mddb.run(mail=False)
    assert locators(svc) == {("0317-8471", "1", "9", "10.5555/A")}


def test_a_query_by_issn_volume_and_page_finds_the_article_among_colliding_journals(svc, client, alice):
    deposit(svc, client, deposit_xml([Article("10.5555/j1", surname="Okafor", first_page="5")], issn="1234-5679",
                                     journal="Journal One", batch_id="one"))
    deposit(svc, client, deposit_xml([Article("10.5555/j2", surname="Okafor", first_page="5")], issn="0317-8471",
                                     journal="Journal Two", batch_id="two"))
    svc.mddb.run(mail=False)
    answer = svc.queries.answer_now(["0317-8471||Okafor|1||5|2024|full_text|k1|"]).text
    assert answer.strip().split("|")[-1] == "10.5555/j2"
