"""The matcher on data indexed by the real pipeline: deposit over HTTP, worker, metadata load."""

from __future__ import annotations

from conftest import corpus_dir
from querydata import deposit, index_journal, load_index

from agency.query.piped_format import Ambiguous, Found, NoMatch, RecordFields, answer_line, parse_line

BOOK = "crossref-schema-bundle-0.3.1__best-practice__book5.3.0.xml"


def ask(svc, *lines: str) -> list:
    parsed = [parse_line(n, line) for n, line in enumerate(lines, 1)]
    return svc.queries.matcher.answer(parsed)


def test_journal_queries_with_damage(client, svc, alice):
    index_journal(client, svc)
    outcomes = ask(svc,
                   "1234-5679|Journal of Tests|Mueller|1|1|239|2024|||",  # transliterated
                   "|J Tests|Kowalsky|I||301|2025|||",  # abbreviation, misspelling, roman volume, year + 1
                   "12345679||Nguyen|1||15743|2024|||",  # e-location without its letter
                   "|Journal of Tests|Smith|1||251|2024|||",  # wrong page: numbers are exact
                   "|Journal of Tests|Smith|2||250|2024|||",  # wrong volume
                   "|Journal of Tests|Smith|1||250|2021|||",  # year three off
                   "|Acta Exempli|Smith|1||250|2024|||",  # another journal
                   "|Journal of Tests|Tanaka|1||250|2024|||")  # another author
    assert outcomes[:3] == [Found("10.5555/jt.1"), Found("10.5555/jt.4"), Found("10.5555/jt.3")]
    assert all(isinstance(o, NoMatch) for o in outcomes[3:])


def test_same_page_in_two_issues_needs_the_issue(client, svc, alice):
    from batchgen import Article, deposit_xml

    xml = deposit_xml([Article("10.5555/p.1", surname="Smith", first_page="5")], journal="Paged", issn="2049-3630")
    deposit(client, svc, xml)
    second = xml.replace(b"<issue>1</issue>", b"<issue>2</issue>").replace(b"10.5555/p.1", b"10.5555/p.2")
    deposit(client, svc, second.replace(b"batch-1", b"batch-2"))
    load_index(svc)
    either, with_issue = ask(svc, "2049-3630||Smith|1||5|2024|||", "2049-3630||Smith|1|2|5|2024|||")
    assert either == Ambiguous(("10.5555/p.1", "10.5555/p.2"))
    assert with_issue == Found("10.5555/p.2")


def test_book_chapter_by_isbn10_and_the_book_by_title(client, svc, alice):
    deposit(client, svc, (corpus_dir("crossref-deposit") / BOOK).read_bytes())
    load_index(svc)
    chapter, book, lookup = ask(svc, "1-59668-054-7|||Carberry|||2|2019|I|||",
                                "||Obese Cat Care|Surname||||2009||||",
                                "k|10.32013/cQy34FJ")
    assert chapter == Found("10.32013/cQy34FJ")
    assert book == Found("10.32013/9mIN5yS")
    assert isinstance(lookup, RecordFields) and not lookup.is_journal
    line = answer_line(parse_line(1, "k|10.32013/cQy34FJ"), lookup).split("|")
    assert len(line) == 12 and "9781596680548" in line[0] and line[2] == "Obese Cat Care" and line[11] == "10.32013/cQy34FJ"


def test_doi_lookup_of_a_registered_doi_not_yet_indexed(client, svc, alice):
    from batchgen import Article, deposit_xml

    deposit(client, svc, deposit_xml([Article("10.5555/new.1")]))
    (outcome,) = ask(svc, "10.5555/NEW.1")
    assert isinstance(outcome, NoMatch) and "not indexed yet" in outcome.detail
    load_index(svc)
    (outcome,) = ask(svc, "10.5555/NEW.1")
    assert isinstance(outcome, RecordFields) and outcome.doi == "10.5555/new.1" and outcome.author == "Smith"


def test_answers_are_deterministic(client, svc, alice):
    index_journal(client, svc)
    lines = ["|Journal of Tests|Smith|1||250|2024|||", "|J Tests|Kowalski|1||301|2024|||", "10.5555/jt.1"]
    assert ask(svc, *lines) == ask(svc, *reversed(lines))[::-1]
