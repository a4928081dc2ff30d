"""CSL JSON and BibTeX from a citation record, without a database: types, names, escaping."""

from __future__ import annotations

from dataclasses import replace

from agency.handles.resolver import CitationRecord, Person, bibtex, bibtex_key, csl_json, csl_type

CHAPTER = CitationRecord(
    doi="10.5555/book.ch3", url="https://example.org/ch3?x={1}", content_type="content_item", body_type="book",
    publication_type="chapter", title="On $costs$ ~ #3", container_title="The Book", container_abbrev=None,
    series_title="Lecture Notes", volume="12", issue=None, first_page="33", last_page="47", edition="2",
    year=2021, publisher="Test Press",
    people=(Person("author", "Ødegård", "Åse"), Person("author", "World Health Organization", None, True),
            Person("editor", "Editor", "Ed")),
    isbns=("9780306406157",),
)


def test_csl_types():
    assert csl_type(CHAPTER) == "chapter"
    assert csl_type(replace(CHAPTER, publication_type="reference_entry")) == "entry"
    assert csl_type(replace(CHAPTER, content_type="conference_paper")) == "paper-conference"
    assert csl_type(replace(CHAPTER, content_type="dissertation")) == "thesis"
    assert csl_type(replace(CHAPTER, content_type="database_metadata")) == "dataset"
    assert csl_type(replace(CHAPTER, content_type="something_new")) == "document"


def test_csl_chapter_with_organization_and_editor():
    item = csl_json(CHAPTER)
    assert item["type"] == "chapter" and item["container-title"] == "The Book"
    assert item["author"] == [{"family": "Ødegård", "given": "Åse"}, {"literal": "World Health Organization"}]
    assert item["editor"] == [{"family": "Editor", "given": "Ed"}]
    assert item["page"] == "33-47" and item["edition"] == "2" and item["collection-title"] == "Lecture Notes"
    assert item["ISBN"] == ["9780306406157"] and "ISSN" not in item and "issue" not in item


def test_bibtex_chapter():
    text = bibtex(CHAPTER)
    assert text.startswith("@incollection{Odegard_2021,\n")
    assert "  title = {{On \\$costs\\$ \\textasciitilde{} \\#3}}" in text
    assert "  author = {Ødegård, Åse and {World Health Organization}}" in text
    assert "  editor = {Editor, Ed}" in text
    assert "  booktitle = {The Book}" in text and "  series = {Lecture Notes}" in text
    assert "  pages = {33--47}" in text
    assert "  url = {https://example.org/ch3?x=%7B1%7D}" in text  # braces cannot break the entry


def test_bibtex_key_without_author_or_year():
    bare = replace(CHAPTER, people=(), year=None)
    assert bibtex_key(bare) == "doi"
    assert bibtex(bare).startswith("@incollection{doi,\n")
