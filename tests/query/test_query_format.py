"""The piped query format: reading files, parsing each kind of line, and the answer lines."""

from __future__ import annotations

import io

import pytest

from agency.query.piped_format import (
    AMBIGUOUS, MALFORMED, NO_MATCH, REJECTED, Ambiguous, BookQuery, DoiLookup, Found, JournalQuery,
    NoMatch, QueryTextError, RecordFields, TooManyLines, answer_line, iter_query_lines, outcome_code,
    parse_line, read_query_text,
)
from agency.query.keys import first_page_key, roman_value, to_roman, volume_keys

JOURNAL = "1234-5679|Journal of Tests|Smith|12|3|239|2004|full_text|key1|"
BOOK = "978-0-306-40615-7||Advances in Testing|Jones|2|3|45|2010|Chapter 4|full_text|bk1|"


def read(data: bytes, max_lines: int = 100, max_chars: int = 200) -> list[str]:
    return read_query_text(data, max_lines, max_chars)


# -- whole-file reading -----------------------------------------------------------

def test_lf_crlf_and_lone_cr_all_end_lines():
    assert read(b"a|10.1/x\r\nb|10.1/y\nc|10.1/z\rd|10.1/w") == ["a|10.1/x", "b|10.1/y", "c|10.1/z", "d|10.1/w"]


def test_utf8_with_bom_and_accents_is_read():
    assert read("\ufeff|Revista de Física|Müller|1||2|2001||k|\n".encode()) == ["|Revista de Física|Müller|1||2|2001||k|"]


def test_blank_lines_are_kept_so_answers_stay_aligned():
    assert read(b"10.1/a\n\n   \n10.1/b\n") == ["10.1/a", "", "   ", "10.1/b"]


def test_latin1_bytes_are_refused_with_the_line_and_column():
    with pytest.raises(QueryTextError) as err:
        read("10.1/a\n|Revista de F\u00edsica|x|1||2|2001||k|\n".encode("latin-1"))
    assert "Line 2" in err.value.message and "UTF-8" in err.value.message and "0xED" in err.value.message


def test_nul_bytes_are_refused():
    with pytest.raises(QueryTextError) as err:
        read(b"10.1/a\n10.1/\x00b\n")
    assert "Line 2" in err.value.message and "NUL" in err.value.message


def test_utf16_is_refused_by_its_bom():
    with pytest.raises(QueryTextError) as err:
        read("10.1/a\n".encode("utf-16"))
    assert "UTF-16" in err.value.message


def test_overlong_line_is_refused_without_reading_it_whole():
    data = b"10.1/a\n" + b"x" * 5000 + b"\n"
    with pytest.raises(QueryTextError) as err:
        read(data, max_chars=200)
    assert "Line 2" in err.value.message and "200" in err.value.message


def test_line_limit_counts_characters_not_bytes():
    assert read(("é" * 200).encode(), max_chars=200) == ["é" * 200]
    with pytest.raises(QueryTextError):
        read(("é" * 201).encode(), max_chars=200)


def test_too_many_lines_is_413():
    with pytest.raises(TooManyLines) as err:
        read(b"10.1/a\n" * 11, max_lines=10)
    assert err.value.status == 413 and "10 lines" in err.value.message


def test_empty_text_is_refused():
    for data in (b"", b"\n\n  \n"):
        with pytest.raises(QueryTextError) as err:
            read(data)
        assert "No query" in err.value.message


def test_streaming_reader_stops_at_the_first_bad_line():
    source = io.BytesIO(b"10.1/a\n10.1/b\n\xff\n")
    lines = iter_query_lines(source, 100, 200)
    assert next(lines) == "10.1/a" and next(lines) == "10.1/b"
    with pytest.raises(QueryTextError):
        next(lines)


# -- parsing ------------------------------------------------------------------------

def test_journal_line():
    line = parse_line(1, JOURNAL)
    assert line.query == JournalQuery(issns=("1234-5679",), title="Journal of Tests", author="Smith",
                                      volume="12", issue="3", page="239", year=2004, key="key1")
    assert line.doi_slot == 9


def test_journal_line_with_two_issns_and_compact_spelling():
    line = parse_line(1, "12345679, 2049-3630|||1||5|||k|")
    assert line.query.issns == ("1234-5679", "2049-3630")


def test_book_line_with_isbn10_is_read_as_isbn13():
    line = parse_line(1, "0-306-40615-2||Advances|Jones|||45|2010||||")
    assert isinstance(line.query, BookQuery)
    assert line.query.isbns == ("9780306406157",) and line.query.issns == ()
    full = parse_line(2, BOOK).query
    assert full.volume_title == "Advances in Testing" and full.component == "Chapter 4" and full.key == "bk1"


def test_book_line_accepts_an_issn_too():
    assert parse_line(1, "1234-5679|Lecture Notes|Proc|Ha|1||332|2001||||").query.issns == ("1234-5679",)


@pytest.mark.parametrize("text,key,doi", [
    ("10.5555/abc", "", "10.5555/abc"),
    ("k1|10.5555/abc", "k1", "10.5555/abc"),
    ("||||||||4|10.1039/a709269e", "4", "10.1039/a709269e"),
    ("  doi:10.5555/ABC  ", "", "10.5555/ABC"),
    ("k|https://doi.org/10.5555/x", "k", "10.5555/x"),
])
def test_doi_lookups(text, key, doi):
    assert parse_line(1, text).query == DoiLookup(doi=doi, key=key)


@pytest.mark.parametrize("text,code,words", [
    ("|Journal|Smith|1|2|3|2000||k", MALFORMED, "9 fields"),
    ("|Journal|Smith|1|2|3|2000||k||", MALFORMED, "11 fields"),
    ("hello", MALFORMED, "1 field;"),
    ("|||", MALFORMED, "only empty"),
    ("1234-567|Journal|Smith|1|2|3|2000||k|", MALFORMED, "not an ISSN"),
    ("978-0-306-40615-8||Book|Jones|||45|2010||||", MALFORMED, "check digit"),
    ("0-306-40615-3||Book|Jones|||45|2010||||", MALFORMED, "check digit"),
    ("12345||Book|Jones|||45|2010||||", MALFORMED, "neither an ISBN"),
    ("1234-5679|Journal|Smith|1|2|3|last year||k|", MALFORMED, "YEAR"),
    ("k|10.5555", MALFORMED, "not a DOI"),
    ("1234-5679|Journal||1|2||2000||k|", REJECTED, "author"),
    ("0-306-40615-2||Book||1||||||k|", REJECTED, "author"),
    ("|||1|2|3|2000||k|", REJECTED, "ISSN or its title"),
    ("||||1||3|2000||||", REJECTED, "ISBN"),
])
def test_bad_lines_carry_a_diagnostic(text, code, words):
    line = parse_line(7, text)
    assert line.query is None and line.problem.code == code and words in line.problem.detail
    answer = answer_line(line)
    assert answer.startswith(text + "|" + code + ": ")
    assert answer.count("\n") == 0 and outcome_code(line, None) == code


def test_an_issn_with_a_wrong_check_digit_is_a_weak_hint_not_a_malformed_line():
    line = parse_line(1, "1234-5678|Journal|Smith|1|2|3|2000||k|")
    assert line.problem is None and line.query.issns == () and line.query.bad_issns == ("1234-5678",)
    found = answer_line(line, Found("10.5555/x")).split("|")
    assert found[9] == "10.5555/x" and found[10].startswith("NOTE: ISSN '1234-5678' has a wrong check digit")
    assert "wrong check digit" in answer_line(line, NoMatch()).split("|")[10]
    assert "wrong check digit" in answer_line(line, Ambiguous(("10.5555/a", "10.5555/b"))).split("|")[10]
    only = parse_line(2, "12345678||Smith|1|2|3|2000||k|")  # the typo names the journal alone: still a query
    assert only.query is not None and only.query.bad_issns == ("1234-5678",)
    mixed = parse_line(3, "1234-5678 2049-3630|J|Smith|1|2|3|2000||k|").query
    assert mixed.issns == ("2049-3630",) and mixed.bad_issns == ("1234-5678",)
    assert parse_line(4, "1234-5678||Book|Jones|||45|2010||||").query.bad_issns == ("1234-5678",)
    clean = parse_line(5, "1234-5679|J|Smith|1|2|3|2000||k|")
    assert clean.notes == () and answer_line(clean, Found("10.5555/x")).count("|") == 9


def test_page_only_or_author_only_is_enough():
    assert parse_line(1, "1234-5679|J|||1|45|2000||k|").query.page == "45"
    assert parse_line(1, "|J|Smith|||||||").query.author == "Smith"


def test_blank_line_answers_blank():
    line = parse_line(3, "   ")
    assert line.is_blank and answer_line(line) == "" and outcome_code(line, None) == "blank"


# -- answers ------------------------------------------------------------------------

def test_found_fills_the_doi_field_and_echoes_everything_else():
    line = parse_line(1, JOURNAL)
    assert answer_line(line, Found("10.5555/x.1")) == JOURNAL + "10.5555/x.1"
    assert answer_line(parse_line(1, BOOK), Found("10.5555/b")) == BOOK + "10.5555/b"


def test_no_match_and_ambiguous_append_a_diagnostic_field():
    line = parse_line(1, JOURNAL)
    no = answer_line(line, NoMatch())
    assert no.startswith(JOURNAL + "|" + NO_MATCH) and no.split("|")[9] == ""
    amb = answer_line(line, Ambiguous(("10.5555/a", "10.5555/b|c")))
    assert amb == JOURNAL + "|" + AMBIGUOUS + ": 10.5555/a 10.5555/b%7Cc"
    assert outcome_code(line, Ambiguous(("a", "b"))) == AMBIGUOUS


def test_doi_lookup_answer_is_the_record_in_pipe_layout():
    line = parse_line(1, "mine|10.5555/x")
    journal = RecordFields(doi="10.5555/x", is_journal=True, issns=("1234-5679", "2049-3630"),
                           title="Journal | of Tests", author="Smith", volume="1", issue="2", page="3", year=2001)
    assert answer_line(line, journal) == "1234-5679,2049-3630|Journal %7C of Tests|Smith|1|2|3|2001|full_text|mine|10.5555/x"
    book = RecordFields(doi="10.5555/x", is_journal=False, isbns=("9780306406157",), title="Series",
                        volume_title="Book", author="Jones", page="45", year=2010, component="4")
    fields = answer_line(line, book).split("|")
    assert len(fields) == 12 and fields[0] == "9780306406157" and fields[10] == "mine" and fields[11] == "10.5555/x"
    assert answer_line(line, NoMatch("10.5555/x is not registered")) == "mine|10.5555/x|NO_MATCH: 10.5555/x is not registered"


# -- query-side keys ----------------------------------------------------------------

@pytest.mark.parametrize("text,key", [
    ("239", "239"), ("239-245", "239"), ("pp. 239–45", "239"), ("e15743", "15743"), ("S12-S15", "12"),
    ("0045", "45"), ("p. 7", "7"), ("", None), ("12 to 14", "12"),
])
def test_first_page_key(text, key):
    assert first_page_key(text) == key


def test_roman_volumes_meet_arabic_ones():
    assert volume_keys("XII") == ("xii", "12")
    assert volume_keys("Vol. 12") == ("12", "xii")
    assert volume_keys("Suppl 2") == ("suppl 2",)
    assert roman_value("mcmxcix") == 1999 and roman_value("iiii") is None and roman_value("abc") is None
    assert to_roman(2024) == "mmxxiv"
    assert volume_keys("") == ()
