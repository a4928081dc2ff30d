"""Title records: the first depositor of an ISSN/ISBN owns the title; others fail with Crossref's wording."""

from __future__ import annotations

import multiprocessing
import os
from xml.sax.saxutils import escape

import pytest
from sqlalchemy import select

from agency.admin.audit import events
from agency.admin.titles import TitleGuard, titles_of
from agency.deposit.extraction import DepositRecord, TitleContext
from agency.handles.store import find_handle
from agency.models import TitleIdentifier, TitleRecord
from batchgen import Article, deposit_xml
from conftest import basic_headers
from logcheck import parse_valid_log


def book_xml(doi: str, title: str, isbns: list[str], series_issn: str | None = None) -> bytes:
    series = (f"<series_metadata><titles><title>Cat Series</title></titles><issn>{series_issn}</issn>"
              "</series_metadata>") if series_issn else ""
    element = "book_series_metadata" if series_issn else "book_metadata"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<doi_batch xmlns="http://www.crossref.org/schema/5.3.0" version="5.3.0">
  <head><doi_batch_id>b</doi_batch_id><timestamp>20240101000000</timestamp>
    <depositor><depositor_name>P</depositor_name><email_address>p@example.org</email_address></depositor>
    <registrant>P</registrant></head>
  <body><book book_type="monograph"><{element} language="en">{series}
    <titles><title>{escape(title)}</title></titles>
    <publication_date media_type="print"><year>2009</year></publication_date>
    {''.join(f'<isbn>{i}</isbn>' for i in isbns)}
    <publisher><publisher_name>P</publisher_name></publisher>
    <doi_data><doi>{doi}</doi><resource>https://example.org/{doi}</resource></doi_data>
  </{element}></book></body></doi_batch>""".encode()


def test_first_deposit_creates_the_title_record_and_others_fail_with_crossrefs_wording(svc, deposit, bob):
    _, records = deposit(deposit_xml([Article("10.5555/a.1")], issn="1234-5679", journal="Journal of Tests"))
    assert records[0]["status"] == "Success"
    with svc.db.sessions() as session:
        [(record, identifiers, owner)] = titles_of(session)
        assert (record.kind, record.title, identifiers, owner) == ("journal", "Journal of Tests", ["1234-5679"],
                                                                   "alice")
        [event] = events(session, subject=f"title:{record.id}")
        assert (event.actor, event.action, event.after) == (
            "account:alice", "title.create", {"title": "Journal of Tests", "identifiers": ["1234-5679"]})
    _, records = deposit(deposit_xml([Article("10.6666/b.1"), Article("10.6666/b.2", first_page="9")],
                                     issn="1234-5679", journal="Stolen Journal"), "bob", "bob-password")
    for r in records:
        assert r["status"] == "Failure"
        assert r["msg"].startswith('ISSN "1234-5679" has already been assigned, title/issn: '
                                   "Journal of Tests/1234-5679 is owned by publisher: alice.")
        assert '"to": "bob", "title": "1234-5679"' in r["msg"]
    with svc.db.sessions() as session:
        assert find_handle(session, "10.6666/b.1") is None
        assert len(titles_of(session)) == 1


def test_the_owner_with_a_different_title_text_gets_a_warning(svc, deposit):
    deposit(deposit_xml([Article("10.5555/a.1")], journal="Journal of Tests"))
    _, records = deposit(deposit_xml([Article("10.5555/a.2", first_page="2")], journal="journal  of TESTS"))
    assert records[0]["status"] == "Success"  # case and spacing are not a different title
    _, records = deposit(deposit_xml([Article("10.5555/a.3", first_page="3")], journal="J. Tests"))
    assert records[0]["status"] == "Warning"
    assert records[0]["msg"] == ('Successfully added; Title "J. Tests" differs from the title record '
                                 '"Journal of Tests" (ISSN 1234-5679) this account owns; the title record keeps '
                                 "its title (ask the RA to change it)")
    with svc.db.sessions() as session:
        assert find_handle(session, "10.5555/a.3") is not None
        assert [r.title for r, _i, _o in titles_of(session)] == ["Journal of Tests"]


def test_isbns_and_series_issns_are_owned_too(svc, deposit, bob):
    _, records = deposit(book_xml("10.5555/book.1", "Obese Cat Care", ["1596680547", "9789000002191"],
                                  series_issn="2049-3630"))
    assert records[0]["status"] == "Success", records
    with svc.db.sessions() as session:
        found = {(r.kind, r.title, tuple(i)) for r, i, _o in titles_of(session)}
    assert found == {("book", "Obese Cat Care", ("9781596680548", "9789000002191")),
                     ("series", "Cat Series", ("2049-3630",))}
    _, records = deposit(book_xml("10.6666/book.2", "Thin Cat Care", ["978-1-59668-054-8"]), "bob", "bob-password")
    assert records[0]["status"] == "Failure"
    assert records[0]["msg"].startswith('ISBN "9781596680548" has already been assigned, title/isbn: '
                                        "Obese Cat Care/9781596680548 is owned by publisher: alice.")
    _, records = deposit(book_xml("10.6666/book.3", "Dog Care", ["9780306406157"], series_issn="2049-3630"),
                         "bob", "bob-password")
    assert records[0]["status"] == "Failure" and 'ISSN "2049-3630"' in records[0]["msg"]
    _, records = deposit(book_xml("10.6666/book.4", "Dog Care", ["9780306406157"]), "bob", "bob-password")
    assert records[0]["status"] == "Success"


def test_a_new_identifier_beside_an_owned_one_joins_its_title_record(svc, deposit):
    deposit(book_xml("10.5555/book.1", "Cat Care", ["9780306406157"]))
    deposit(book_xml("10.5555/book.2", "Cat Care", ["9780306406157", "9781596680548"]))
    with svc.db.sessions() as session:
        [(record, identifiers, _owner)] = titles_of(session)
    assert identifiers == ["9780306406157", "9781596680548"]


def test_identical_citations_are_added_with_conflict_naming_the_other_doi(svc, deposit, client):
    _, records = deposit(deposit_xml([Article("10.5555/c.1", first_page="7")]))
    assert records[0]["status"] == "Success"
    body, records = deposit(deposit_xml([Article("10.5555/c.2", first_page="7"), Article("10.5555/c.3", first_page="8"),
                                         Article("10.5555/c.4", first_page="7")], timestamp="20240102000000"))
    # The XML log names them in <dois_in_conflict>, as Crossref's does (EZID's poller reads it there).
    log = parse_valid_log(client.get(f"/v1/deposits/{body['submission_id']}/log",
                                     headers=basic_headers("alice", "alice-password")).data)
    named = {d.findtext("doi"): [e.text for e in d.iterfind("dois_in_conflict/doi")]
             for d in log.iterfind("record_diagnostic")}
    assert named == {"10.5555/c.2": ["10.5555/c.1"], "10.5555/c.3": [], "10.5555/c.4": ["10.5555/c.1", "10.5555/c.2"]}
    assert [(r["status"], r["msg"]) for r in records] == [
        ("Warning", "Added with conflict: another DOI has the same ISSN, volume, issue, first page and year "
                    "(dois_in_conflict: 10.5555/c.1)"),
        ("Success", "Successfully added"),
        ("Warning", "Added with conflict: another DOI has the same ISSN, volume, issue, first page and year "
                    "(dois_in_conflict: 10.5555/c.1 10.5555/c.2)")]
    # Updating a DOI does not conflict with itself; moving it to a free page clears its conflict.
    _, records = deposit(deposit_xml([Article("10.5555/c.1", first_page="7")], timestamp="20240103000000"))
    assert records[0]["status"] == "Warning" and "Updated with conflict" in records[0]["msg"]
    assert "10.5555/c.1 " not in records[0]["msg"] and "10.5555/c.2 10.5555/c.4" in records[0]["msg"]
    _, records = deposit(deposit_xml([Article("10.5555/c.1", first_page="99")], timestamp="20240104000000"))
    assert records[0]["msg"] == "Successfully updated"


def _claim_in_process(url: str, registrant, barrier, results) -> None:
    from agency.db import open_database

    db = open_database(url)
    context = TitleContext("journal", f"Journal of {registrant.login}", ("2049-3630",), ())
    record = DepositRecord(1, f"{sorted(registrant.prefixes)[0]}/race", "https://example.org", "1",
                           "journal_article", (context,))
    with db.transaction() as session:
        barrier.wait(timeout=30)
        verdicts = TitleGuard().before_registration(session, registrant, [record])
    results.put((registrant.login, verdicts.get(1).status if 1 in verdicts else "Success"))
    db.engine.dispose()


def test_two_processes_racing_on_a_new_issn_make_one_owner(svc, alice, bob, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("the race needs two processes writing at once: PostgreSQL")
    spawn = multiprocessing.get_context("spawn")
    for _round in range(3):
        with svc.db.transaction() as session:
            session.execute(TitleIdentifier.__table__.delete())
            session.execute(TitleRecord.__table__.delete())
        barrier, results = spawn.Barrier(2), spawn.Queue()
        workers = [spawn.Process(target=_claim_in_process, args=(database_url, who, barrier, results))
                   for who in (alice, bob)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=60)
        outcome = dict(results.get(timeout=5) for _ in workers)
        assert sorted(outcome.values()) == ["Failure", "Success"], outcome
        winner = next(login for login, status in outcome.items() if status == "Success")
        with svc.db.sessions() as session:
            assert [(o, i) for _r, i, o in titles_of(session)] == [(winner, ["2049-3630"])]  # no orphan record
            assert session.scalars(select(TitleIdentifier.value)).all() == ["2049-3630"]
