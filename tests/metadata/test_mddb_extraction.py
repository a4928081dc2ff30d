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
