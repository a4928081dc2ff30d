"""Metadata extraction from batch files: numbering shared with the deposit, containers inherited, not leaked."""

from __future__ import annotations

import pytest

from agency.deposit.extraction import iter_records
from agency.metadata.extraction import BatchMetadataReader
from conftest import corpus_dir

NS = "http://www.crossref.org/schema/5.3.1"
HEAD = """<head><doi_batch_id>x-1</doi_batch_id><timestamp>20240101000000</timestamp>
<depositor><depositor_name>D</depositor_name><email_address>d@example.org</email_address></depositor>
<registrant>Registrant Press</registrant></head>"""


def batch(tmp_path, body: str):
    path = tmp_path / "batch.xml"
    path.write_text(f'<?xml version="1.0"?><doi_batch xmlns="{NS}" version="5.3.1">{HEAD}<body>{body}</body>'
                    "</doi_batch>", encoding="utf-8")
    return path


def doi_data(doi: str, timestamp: str = "") -> str:
    stamp = f"<timestamp>{timestamp}</timestamp>" if timestamp else ""
    return f"<doi_data><doi>{doi}</doi>{stamp}<resource>https://example.org/{doi}</resource></doi_data>"


def journal(title: str, issn: str, volume: str, articles: str, issue_doi: str = "") -> str:
    return (f"<journal><journal_metadata><full_title>{title}</full_title><issn>{issn}</issn></journal_metadata>"
            f"<journal_issue><journal_volume><volume>{volume}</volume></journal_volume><issue>2</issue>"
            f"{doi_data(issue_doi) if issue_doi else ''}</journal_issue>{articles}</journal>")


def article(doi: str, title: str, extra: str = "") -> str:
    return (f'<journal_article publication_type="full_text"><titles><title>{title}</title></titles>'
            f"<contributors><person_name sequence=\"first\" contributor_role=\"author\"><given_name>A</given_name>"
            f"<surname>S-{title}</surname></person_name></contributors><pages><first_page>7</first_page></pages>"
            f"{doi_data(doi)}{extra}</journal_article>")


def read(path):
    reader = BatchMetadataReader(path)
    records = sorted(reader, key=lambda r: r.seq)
    return reader, records


def test_containers_do_not_leak_into_the_next_journal(tmp_path):
    body = (journal("First Journal", "1234-5679", "1", article("10.5555/a1", "One") + article("10.5555/a2", "Two"),
                    issue_doi="10.5555/issue1")
            + journal("Second Journal", "0317-8471", "9", article("10.5555/b1", "Three")))
    reader, records = read(batch(tmp_path, body))
    assert [(r.seq, r.doi, r.content_type, r.journal_title, r.volume) for r in records] == [
        (1, "10.5555/issue1", "journal_issue", "First Journal", "1"),
        (2, "10.5555/a1", "journal_article", "First Journal", "1"),
        (3, "10.5555/a2", "journal_article", "First Journal", "1"),
        (4, "10.5555/b1", "journal_article", "Second Journal", "9"),
    ]
    assert [i.raw for i in records[3].identifiers] == ["0317-8471"]
    assert records[1].title == "One" and records[2].contributors[0].surname == "S-Two"
    assert reader.head.batch_id == "x-1" and reader.head.email == "d@example.org"
    assert records[0].publisher == "Registrant Press"  # the head's registrant when no publisher is given
    assert reader.record_count == 4


def test_components_after_an_articles_doi_keep_document_numbering(tmp_path):
    components = ("<component_list><component parent_relation=\"isPartOf\"><titles><title>Figure 1</title></titles>"
                  f"{doi_data('10.5555/a1.f1')}</component></component_list>")
    body = journal("J", "1234-5679", "1", article("10.5555/a1", "One", components) + article("10.5555/a2", "Two"))
    path = batch(tmp_path, body)
    _reader, records = read(path)
    assert [(r.seq, r.doi, r.content_type) for r in records] == [
        (1, "10.5555/a1", "journal_article"), (2, "10.5555/a1.f1", "component"), (3, "10.5555/a2", "journal_article")]
    assert [(r.seq, r.doi) for r in iter_records(path, "20240101000000")] == [(r.seq, r.doi) for r in records]


def test_record_timestamp_overrides_the_head(tmp_path):
    body = journal("J", "1234-5679", "1", article("10.5555/a1", "One").replace(
        "<resource>", "<timestamp>20250101000000</timestamp><resource>"))
    _reader, [record] = read(batch(tmp_path, body))
    assert record.timestamp == "20250101000000"


def test_large_journal_streams_every_record(tmp_path):
    articles = "".join(article(f"10.5555/n{i}", f"T{i}") for i in range(3000))
    _reader, records = read(batch(tmp_path, journal("Big", "1234-5679", "3", articles)))
    assert len(records) == 3000
    assert all(r.journal_title == "Big" and r.volume == "3" for r in records)
    assert records[-1].title == "T2999" and records[-1].contributors[0].surname == "S-T2999"


def test_numbering_matches_the_deposit_for_every_corpus_file():
    folder = corpus_dir("crossref-deposit")
    checked = 0
    for path in sorted(folder.glob("*.xml")):
        try:
            reader, records = read(path)
        except Exception:  # the corpus' refused files: not loadable, never reach the load
            continue
        assert [(r.seq, r.doi) for r in records] == [
            (r.seq, r.doi) for r in iter_records(path, reader.head.timestamp)], path.name
        if reader.head.batch_id:  # a doi_batch (not the corpus' bare <database> fragment)
            assert all(r.content_type and r.body_type != "unknown" for r in records), path.name
        checked += 1
    assert checked >= 35


@pytest.mark.parametrize("name, doi, expected", [
    ("crossref-schema-bundle-0.3.1__best-practice__book_series5.3.0.xml", "10.32013/qe51g17",
     {"series_title": "Awesome Book Series", "volume_title": "Eighth in a series", "volume": "8",
      "edition_number": "3", "publisher": "Crossref Publishing"}),
    ("crossref-schema-bundle-0.3.1__best-practice__dataset.5.3.0.xml", "10.32013/NP6QoBh",
     {"volume_title": "Crossref Datasets", "year": 2020, "publication_type": "collection"}),
    ("crossref-schema-bundle-0.3.1__best-practice__dissertation.5.3.0.xml", "10.32013/GO7BE8",
     {"title": "Examining metadata practices across dissertation depositors", "year": 2015}),
    ("elife__elife-crossref-pending_publication-00666__4.4.2.xml", "10.7554/eLife.00666",
     {"url": None, "journal_title": "eLife", "content_type": "pending_publication"}),
    ("crossref-schema-bundle-0.3.1__best-practice__standard5.3.0.xml", "10.32013/j.fJdkK",
     {"title": "A basic example of a standard", "publisher": "Crossref", "year": 1995}),
])
def test_corpus_spot_checks(name, doi, expected):
    _reader, records = read(corpus_dir("crossref-deposit") / name)
    [record] = [r for r in records if r.doi == doi]
    assert {key: getattr(record, key) for key in expected} == expected


UNUSUAL_ARTICLES = [  # journal_article bodies (before doi_data) off the common shape, or at its edges
    '<titles><title>Face <i>markup</i> and <sup>2</sup></title><subtitle>Sub</subtitle></titles>',
    "<titles><title>  Spaces\n\t inside  </title><title>Second</title></titles><titles><title>X</title></titles>",
    "<titles><original_language_title>Only original</original_language_title></titles><titles/>",
    '<contributors><organization sequence="first" contributor_role="author">The <b>Org</b></organization>'
    '<person_name sequence="additional"><surname>Two</surname><ORCID>https://orcid.org/0000-0002-1825-0097'
    "</ORCID></person_name></contributors><contributors><person_name><surname>Ignored</surname></person_name>"
    "</contributors>",
    '<person_name contributor_role="author"><surname>Direct</surname></person_name>',
    "<pages><first_page/><first_page>2</first_page><last_page>9</last_page><last_page>8</last_page></pages>",
    "<pages><last_page>9</last_page></pages><pages><first_page>1</first_page></pages>",
    '<publisher_item><item_number item_number_type="article_number"> e666 </item_number></publisher_item>',
    '<pages><first_page>3</first_page></pages><publisher_item><item_number item_number_type="article_number">'
    "e1</item_number></publisher_item>",
    "<publication_date><month>5</month></publication_date>",
    "<publication_date>2001-02</publication_date><publication_date><year>1999</year></publication_date>",
    "<publication_date><month>5</month></publication_date><acceptance_date><year>2003</year></acceptance_date>",
    '<issn media_type="print">0000-0019</issn>', "<isbn>978-3-16-148410-0</isbn>",
    "<volume>9</volume>", "<edition_number>2</edition_number>", "<component_number>c1</component_number>",
    "<publisher><publisher_name>P</publisher_name></publisher>",
    "<!-- a comment --><?pi data?><titles><title>Commented<!-- x --> title</title></titles>",
    "<crossmark><custom_metadata><program/></custom_metadata></crossmark><citation_list/>",
]


def test_common_records_read_in_one_pass_give_what_the_general_reading_gives(tmp_path, monkeypatch):
    """Articles and their like take a one-pass reading; anything it does not cover goes the general way,
    so every record (corpus files and shapes at the edges of the common one) comes out the same."""
    import agency.metadata.extraction as extraction

    articles = "".join(f'<journal_article publication_type="full_text">{body}{doi_data(f"10.5555/u.{n}")}'
                       "</journal_article>" for n, body in enumerate(UNUSUAL_ARTICLES))
    dated = journal("J", "1234-5679", "4", articles).replace(
        "<journal_issue>", "<journal_issue><publication_date><year>2020</year></publication_date>", 1)
    paths = [batch(tmp_path, journal("J", "1234-5679", "4", articles) + dated)]
    paths += sorted(corpus_dir("crossref-deposit").glob("*.xml"))
    plain = []
    original = extraction._apply_plain
    monkeypatch.setattr(extraction, "_apply_plain", lambda element, record: plain.append(
        original(element, record)) or plain[-1])

    def records(path) -> list:
        try:
            return list(BatchMetadataReader(path))
        except Exception as exc:  # the corpus' refused files fail alike either way
            return [type(exc).__name__]

    fast = [records(path) for path in paths]
    monkeypatch.setattr(extraction, "PLAIN_RECORDS", frozenset())
    general = [records(path) for path in paths]
    assert fast == general
    assert plain.count(True) >= 40 and plain.count(False) >= 8  # both ways were taken


def test_a_record_inherits_every_context_field_by_name():
    """``inherited`` passes fields by position: each must land in the field of its own name."""
    import dataclasses

    from agency.metadata.extraction import RecordMetadata

    base = RecordMetadata(**{f.name: (f"base-{f.name}" if f.type != "int" else 7) for f in dataclasses.fields(
        RecordMetadata) if f.name not in ("year", "seq", "contributors", "identifiers")}, seq=0, year=1999,
                          contributors=["base-person"], identifiers=["base-issn"])
    record = base.inherited(5, "10.5555/x", "https://x", "2024", "journal_article")
    given = {"seq": 5, "doi": "10.5555/x", "url": "https://x", "timestamp": "2024", "content_type": "journal_article"}
    own = {"title": None, "first_page": None, "last_page": None, "component_number": None, "contributors": []}
    for f in dataclasses.fields(RecordMetadata):
        expected = given.get(f.name, own.get(f.name, getattr(base, f.name)))
        assert getattr(record, f.name) == expected, f.name
    assert record.identifiers is not base.identifiers  # the record's own list: base's stays as it is
