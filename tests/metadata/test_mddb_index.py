"""Writing records into the index: per-record results, check digits, isolation of records the database refuses."""

from __future__ import annotations

from agency.metadata.extraction import Contributor, IdentifierText, RecordMetadata
from agency.metadata.index import LoadSource, MetadataWriter, identifier_rows, prepare
from mddb_pipeline import contributors, identifiers, record

SOURCE = LoadSource("alice/2024/01/9", "alice", 9, "Test Press")


def article(seq: int, doi: str, timestamp: str = "20240101000000", **fields) -> RecordMetadata:
    values = dict(title=f"Title {seq}", journal_title="Journal", volume="1", first_page=str(seq))
    values.update(fields)
    return RecordMetadata(seq=seq, doi=doi, url=f"https://example.org/{seq}", timestamp=timestamp,
                          content_type="journal_article", body_type="journal", **values)


def test_check_digits_and_unparseable_identifiers_warn():
    warnings: list[str] = []
    rows = identifier_rows("K", [IdentifierText("isbn", "1596680546", "print"),  # wrong ISBN-10 check digit
                                 IdentifierText("isbn", "978-1-59668-054-8", None),  # same book, right
                                 IdentifierText("issn", "not-an-issn", None),
                                 IdentifierText("issn", "2050-084x", "electronic")], warnings)
    assert {(r["kind"], r["value"], r["valid_check_digit"]) for r in rows} == {
        ("isbn", "9781596680548", False), ("issn", "2050-084X", True)}
    assert len(warnings) == 2
    assert "ISBN 1596680546 has a wrong check digit (expected 7)" in warnings[0]
    assert "ISSN 'not-an-issn' is not a valid ISSN" in warnings[1]


def test_first_author_is_the_author_marked_first_else_the_first_author():
    people = [Contributor("person", "editor", "first", "Editor", "E", None),
              Contributor("organization", "author", "first", "A Consortium", None, None),
              Contributor("person", "author", "additional", "Second", "S", None),
              Contributor("person", "author", "first", "Lead", "L", None)]
    prepared = prepare(article(1, "10.5555/p", contributors=people), SOURCE)
    assert [(r["surname"], r["is_first_author"]) for r in prepared.contributors] == [
        ("Editor", False), ("A Consortium", False), ("Second", False), ("Lead", True)]
    assert prepared.row["first_author_key"] == "lead"
    unmarked = [Contributor("person", None, None, "Only", "O", None)]
    assert prepare(article(2, "10.5555/q", contributors=unmarked), SOURCE).row["first_author_key"] == "only"


def test_overlong_fields_are_cut_with_a_warning():
    prepared = prepare(article(1, "10.5555/long", volume="9" * 300), SOURCE)
    assert len(prepared.row["volume"]) == 255
    assert any("volume is longer than 255 characters" in w for w in prepared.warnings)


def test_every_overlong_field_warns_once_in_a_fixed_order_after_title_and_identifier_warnings():
    """The warnings of a record are listed in combined.xml as they come: no title, identifiers, then the
    cut fields in this order (the order the index has always reported them in)."""
    order = ("volume", "issue", "first_page", "publication_type", "last_page", "edition_number", "component_number")
    limits = {"volume": 255, "issue": 255, "first_page": 255, "last_page": 255, "edition_number": 64,
              "component_number": 255, "publication_type": 64}
    fields = {name: "x" * (limits[name] + 1) for name in order}
    record = article(1, "10.5555/all-long", title=None, identifiers=[IdentifierText("issn", "bad", None)],
                     **fields)
    prepared = prepare(record, SOURCE)
    cut = [f"{name.replace('_', ' ')} is longer than {limits[name]} characters; it was cut to index it"
           for name in order]
    assert prepared.warnings == ["Record has no title: searches by title will not find it",
                                 "ISSN 'bad' is not a valid ISSN; it was not indexed", *cut]
    assert all(prepared.row[name] == "x" * limits[name] for name in order)
    for name in order:  # one field at a time: only its own warning
        assert prepare(article(2, "10.5555/one", **{name: fields[name]}), SOURCE).warnings == [
            cut[order.index(name)]]
    at_limit = {name: "y" * limits[name] for name in order}  # as long as each column allows: kept whole
    prepared = prepare(article(3, "10.5555/at-limit", **at_limit), SOURCE)
    assert prepared.warnings == [] and all(prepared.row[name] == at_limit[name] for name in order)


def test_a_record_the_database_refuses_fails_alone(svc):
    good = [prepare(article(n, f"10.5555/ok{n}"), SOURCE) for n in (1, 3)]
    bad = prepare(article(2, "10.5555/bad"), SOURCE)
    bad.row["depositor_login"] = None  # NOT NULL: the database refuses this row
    with svc.db.transaction() as session:
        results = MetadataWriter().write(session, [good[0], bad, good[1]])
    assert results[1].status == results[3].status == "Success"
    assert results[2].status == "Failure" and "could not be stored" in results[2].messages[0]
    assert record(svc, "10.5555/ok1") and record(svc, "10.5555/ok3") and record(svc, "10.5555/bad") is None


def test_older_metadata_never_replaces_newer_and_equal_does(svc):
    writer = MetadataWriter()
    with svc.db.transaction() as session:
        writer.write(session, [prepare(article(1, "10.5555/v", "20240301000000", title="New",
                                               contributors=[Contributor("person", "author", "first", "N", None,
                                                                         None)],
                                               identifiers=[IdentifierText("issn", "1234-5679", None)]),
                                       SOURCE)])
    with svc.db.transaction() as session:
        [older] = writer.write(session, [prepare(article(1, "10.5555/v", "20240101000000", title="Old"),
                                                 SOURCE)]).values()
    assert older.status == "Warning" and "newer deposit (timestamp 20240301000000)" in older.messages[0]
    assert record(svc, "10.5555/v").title == "New"
    assert [c.surname for c in contributors(svc, "10.5555/v")] == ["N"]
    assert identifiers(svc, "10.5555/v") == {("issn", "1234-5679", True)}
    with svc.db.transaction() as session:
        [same] = writer.write(session, [prepare(article(1, "10.5555/v", "20240301000000", title="Same time"),
                                                SOURCE)]).values()
    assert same.status == "Success" and record(svc, "10.5555/v").title == "Same time"
    assert contributors(svc, "10.5555/v") == [] and identifiers(svc, "10.5555/v") == set()


def test_a_doi_twice_in_one_chunk_keeps_the_first(svc):
    with svc.db.transaction() as session:
        results = MetadataWriter().write(session, [prepare(article(1, "10.5555/d", title="First"), SOURCE),
                                                   prepare(article(2, "10.5555/D", title="Second"), SOURCE)])
    assert results[1].status == "Success" and results[2].status == "Failure"
    assert record(svc, "10.5555/d").title == "First"
