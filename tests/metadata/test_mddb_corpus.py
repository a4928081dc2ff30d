"""Every `accept` file of the shared corpus, deposited and loaded: all registered records indexed, right fields."""

from __future__ import annotations

import base64
import csv
import re

import pytest
from sqlalchemy import select

from agency.models import Handle
from conftest import CORPUS, add_account, corpus_dir
from corpus_expectations import expected_row
from logcheck import parse_valid_log
from mddb_pipeline import all_records, contributors, deposit, folder_of, identifiers, record


def _accepted() -> list[str]:
    expected = CORPUS / "crossref-deposit" / "EXPECTED.tsv"
    if not expected.exists():
        return []
    with open(expected, newline="") as fh:
        rows = [expected_row(row) for row in csv.DictReader(fh, delimiter="\t")]
    return [row["file"] for row in rows if row["outcome"] == "accept"]


@pytest.fixture
def corpus_loaded(svc, client):
    """All accept files deposited (in EXPECTED.tsv order) by one account owning their prefixes, then loaded."""
    folder = corpus_dir("crossref-deposit")
    files = _accepted()
    datas = {name: (folder / name).read_bytes() for name in files}
    prefixes = sorted({p.decode().rstrip(".") for d in datas.values() for p in re.findall(rb"<doi>\s*(10\.[0-9.]+)/", d)})
    add_account(svc, "corpus", "corpus-password", "corpus@example.org", prefixes)
    headers = {"Authorization": "Basic " + base64.b64encode(b"corpus:corpus-password").decode(),
               "Content-Type": "application/xml"}
    submissions = {name: deposit(svc, client, data, headers) for name, data in datas.items()}
    report = svc.mddb.run()
    return submissions, report


def _check_every_registered_record_is_indexed_at_the_handle_store_version(svc, corpus_loaded):
    submissions, report = corpus_loaded
    assert report.failed == [] and len(report.loaded) == len(submissions)
    with svc.db.sessions() as session:
        handles = dict(session.execute(select(Handle.key, Handle.version)).all())
    indexed = {key: row.version for key, row in all_records(svc).items()}
    assert indexed == handles  # same DOIs, each at the version that won registration


def _check_combined_logs_validate_and_report_every_record(svc, corpus_loaded):
    submissions, _report = corpus_loaded
    for name, sid in submissions.items():
        root = parse_valid_log((folder_of(svc, sid) / "combined.xml").read_bytes(), schema="combined_diagnostic.xsd")
        for diagnostic in root.iter("record_diagnostic"):
            index_status = diagnostic.find("indexing").get("status")
            if diagnostic.get("status") in ("Success", "Warning"):  # a Warning (title text, conflict) registered it
                assert index_status in ("Success", "Warning"), (name, diagnostic.findtext("doi"))
            else:
                assert index_status == "Skipped", (name, diagnostic.findtext("doi"))


def _check_journal_article_fields(svc, corpus_loaded):
    row = record(svc, "10.5555/12345678")
    assert row.title == "Toward a Unified Theory of High-Energy Metaphysics: Silly String Theory"
    assert (row.journal_title, row.journal_abbrev) == ("Journal of Psychoceramics", "Journal of Psychoceramics")
    assert (row.volume, row.issue, row.first_page, row.last_page, row.year) == ("5", "11", "1", "3", 2008)
    assert row.first_author_surname == "Carberry"
    assert identifiers(svc, "10.5555/12345678") == {("issn", "0264-3561", True)}


def _check_elife_article_number_and_authors(svc, corpus_loaded):
    row = record(svc, "10.7554/eLife.15743")
    assert row.title == "Correction: Dosage compensation can buffer copy-number variation in wild yeast"
    assert (row.journal_title, row.volume, row.year) == ("eLife", "5", 2016)
    people = contributors(svc, "10.7554/eLife.15743")
    assert [p.surname for p in people] == ["Hose", "Yong", "Sardi", "Wang", "Newton", "Gasch"]
    assert [p.is_first_author for p in people] == [True] + [False] * 5
    assert identifiers(svc, "10.7554/eLife.15743") == {("issn", "2050-084X", True)}
    article = record(svc, "10.7554/eLife.00666")
    assert (article.first_page, article.first_page_key) == ("e00666", "666")


def _check_book_and_chapter_fields(svc, corpus_loaded):
    book = record(svc, "10.32013/9mIN5yS")
    assert (book.content_type, book.title, book.volume_title) == ("book_metadata", "Obese Cat Care", "Obese Cat Care")
    assert (book.edition_number, book.year, book.publisher, book.publication_type) == ("2", 2009, "Crossref",
                                                                                       "monograph")
    assert identifiers(svc, "10.32013/9mIN5yS") == {("isbn", "9781596680548", True), ("isbn", "9789000002191", True)}
    chapter = record(svc, "10.32013/cQy34FJ")
    assert chapter.content_type == "content_item" and chapter.volume_title == "Obese Cat Care"
    assert (chapter.first_page, chapter.last_page, chapter.component_number) == ("2", "47", "I")
    assert [(p.surname, p.is_first_author) for p in contributors(svc, "10.32013/cQy34FJ")] == [
        ("Housecat", True), ("Carberry", False)]
    assert ("isbn", "9781596680548", True) in identifiers(svc, "10.32013/cQy34FJ")


def _check_conference_series_and_grant_fields(svc, corpus_loaded):
    paper = record(svc, "10.32013/auBagie")
    assert (paper.body_type, paper.series_title, paper.volume_title) == (
        "conference", "Crossref LIVE Example Proceedings", "Crossref LIVE18")
    assert identifiers(svc, "10.32013/auBagie") == {("issn", "2169-2750", True)}
    grant = record(svc, "10.32013/vGVkUKI")
    assert (grant.content_type, grant.title, grant.first_author_surname) == ("grant", "The value of metadata",
                                                                            "Burtenson")


def _check_accented_titles_have_folded_keys(svc, corpus_loaded):
    paper = record(svc, "10.5540/03.2020.007.01.0339")
    assert paper.title_key == ("importancia do calculo diferencial e integral para a formacao do professor "
                               "de matematica da educacao basica")
    assert paper.first_author_key == "alessio"


def _check_every_content_type_is_represented(svc, corpus_loaded):
    types = {row.content_type for row in all_records(svc).values()}
    assert {"journal_article", "journal_metadata", "book_metadata", "content_item", "conference_paper",
            "proceedings_series_metadata", "series_metadata", "component", "dataset", "database_metadata",
            "dissertation", "report-paper_metadata", "standard_metadata", "posted_content", "peer_review",
            "grant"} <= types


def test_corpus_accept_files_are_indexed(svc, corpus_loaded):
    """One deposit-and-load of the whole corpus (it takes seconds), then every check on it."""
    _check_every_registered_record_is_indexed_at_the_handle_store_version(svc, corpus_loaded)
    _check_combined_logs_validate_and_report_every_record(svc, corpus_loaded)
    _check_journal_article_fields(svc, corpus_loaded)
    _check_elife_article_number_and_authors(svc, corpus_loaded)
    _check_book_and_chapter_fields(svc, corpus_loaded)
    _check_conference_series_and_grant_fields(svc, corpus_loaded)
    _check_accented_titles_have_folded_keys(svc, corpus_loaded)
    _check_every_content_type_is_represented(svc, corpus_loaded)
