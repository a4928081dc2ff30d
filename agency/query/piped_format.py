"""Piped query files: reading the text, parsing each line, writing each answer line.

Registrants write queries as they do for Crossref, one per line, fields
separated by vertical bars:

* journal lines, 10 fields:
  ``ISSN|TITLE/ABBREV|FIRST AUTHOR|VOLUME|ISSUE|START PAGE|YEAR|RESOURCE TYPE|KEY|DOI``
* book and conference-proceedings lines, 12 fields:
  ``ISBN/ISSN|SER_TITLE|VOL_TITLE|AUTHOR/EDITOR|VOLUME|EDITION_NUMBER|PAGE|YEAR|COMPONENT_NUMBER|RESOURCE_TYPE|KEY|DOI``
* DOI look-ups: ``DOI`` or ``KEY|DOI``; leading empty fields are ignored, so
  ``||||||||KEY|DOI`` is a look-up too.

The ISSN field may hold several ISSNs separated by commas or spaces (print and
electronic); the book line's first field takes ISBNs (10 or 13 digits) and ISSNs.

Answers (one per line, same order, nothing dropped)
---------------------------------------------------
* A found DOI: the line's fields exactly as sent, with the DOI field filled.
* A DOI look-up that is found: the record's metadata as a journal line (10
  fields) or a book line (12 fields), the KEY echoed and the DOI filled.
* Otherwise: the line's fields exactly as sent (DOI field as sent), then one
  more field, the diagnostic ``CODE: detail``, where CODE is one of

  - ``NO_MATCH``: nothing registered fits the query well enough;
  - ``AMBIGUOUS``: several records fit about equally well; the detail lists
    the candidate DOIs, best first, separated by spaces;
  - ``MALFORMED``: the line cannot be read as a query (wrong field count, an
    ISSN or ISBN that is not one, an ISBN whose check digit is wrong, a year
    that is not a year, a DOI look-up whose DOI is not a DOI);
  - ``REJECTED``: a readable query that cannot be answered as asked (no
    author and no first page, as Crossref requires; nothing naming the
    journal or book).

  An ISSN whose check digit is wrong does not make the line MALFORMED: it is
  a typo more often than not, so the line is matched without it (an indexed
  ISSN one character away counts as a weak hint) and the answer says so, in
  the diagnostic's detail or, on a found line, in one more field after the
  DOI: ``NOTE: ISSN '1234-5678' has a wrong check digit; ...``.

  A client that reads the DOI field by position sees it empty on such lines;
  a diagnostic never starts with ``10.`` so it is never taken for a DOI.
  Detail text never contains a vertical bar or a line break.
* A blank line is answered with a blank line, so answer line N is always the
  answer to query line N.

Whole-file errors (the file is refused, nothing is processed): text that is
not ASCII or UTF-8 (UTF-16 included), NUL or other control bytes, a line
longer than the limit, more lines than the limit, no query at all. Each error
names the first offending line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import IO, Iterable, Iterator, Union

from agency.handles.doi_syntax import doi_problem
from agency.metadata.identifiers import parse_isbn as _parse_isbn
from agency.metadata.identifiers import parse_issn as _parse_issn
from agency.metadata.text_keys import year_of as _year_of

# Query files repeat the same ISSNs and years line after line: parse each once.
parse_issn = lru_cache(maxsize=16384)(_parse_issn)
parse_isbn = lru_cache(maxsize=16384)(_parse_isbn)
year_of = lru_cache(maxsize=4096)(_year_of)

JOURNAL_FIELDS = ("ISSN", "TITLE", "FIRST AUTHOR", "VOLUME", "ISSUE", "START PAGE", "YEAR",
                  "RESOURCE TYPE", "KEY", "DOI")
BOOK_FIELDS = ("ISBN/ISSN", "SER_TITLE", "VOL_TITLE", "AUTHOR/EDITOR", "VOLUME", "EDITION_NUMBER",
               "PAGE", "YEAR", "COMPONENT_NUMBER", "RESOURCE_TYPE", "KEY", "DOI")
NO_MATCH, AMBIGUOUS, MALFORMED, REJECTED = "NO_MATCH", "AMBIGUOUS", "MALFORMED", "REJECTED"
NOTE = "NOTE"  # after the DOI of a found line: a field that could not be used as given
MAX_CANDIDATES_SHOWN = 5

_ID_SEPARATORS = re.compile(r"[,;\s]+")
_DOI_URL = re.compile(r"^(?:doi:\s*|https?://(?:dx\.)?doi\.org/)", re.IGNORECASE)
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]")
_BOMS = ((b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"), (b"\x00\x00\xfe\xff", "UTF-32"))


# -- whole-file reading -------------------------------------------------------------

class QueryTextError(Exception):
    """The file cannot be read as query text; carries an HTTP status and a clear message."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TooManyLines(QueryTextError):
    status = 413


def iter_query_lines(source: IO[bytes], max_lines: int, max_line_chars: int) -> Iterator[str]:
    """The lines of a query file, decoded and without line ends; raises QueryTextError at the first bad one.

    Lines end with LF, CRLF or a lone CR. Reading is streamed, and a line is
    never read far past the length limit, so a hostile file costs little.
    """
    max_bytes = 4 * max_line_chars + 2  # UTF-8 takes at most 4 bytes a character
    number = 0
    first = True
    while True:
        raw = source.readline(max_bytes + 1)
        if not raw:
            return
        if first:
            _check_bom(raw)
            raw = raw.removeprefix(b"\xef\xbb\xbf")
            first = False
        if not raw.endswith(b"\n") and len(raw) > max_bytes:
            raise QueryTextError(f"Line {number + 1} is longer than the limit of {max_line_chars} "
                                 "characters; a query line is far shorter.")
        for piece in raw.rstrip(b"\n").removesuffix(b"\r").split(b"\r"):
            number += 1
            if number > max_lines:
                raise TooManyLines(f"The file has more than {max_lines} lines, the limit; "
                                   "split it into smaller files.")
            yield _decode_line(piece, number, max_line_chars)


def read_query_text(data: bytes, max_lines: int, max_line_chars: int) -> list[str]:
    """All lines of a small query text (synchronous queries), checked as a file is."""
    import io

    lines = list(iter_query_lines(io.BytesIO(data), max_lines, max_line_chars))
    if not any(line.strip() for line in lines):
        raise QueryTextError("No query: the text is empty or has only blank lines.")
    return lines


def _check_bom(raw: bytes) -> None:
    for bom, name in _BOMS:
        if raw.startswith(bom):
            raise QueryTextError(f"The file is {name} text; send it as ASCII or UTF-8.")


def _decode_line(piece: bytes, number: int, max_line_chars: int) -> str:
    control = _CONTROL_BYTES.search(piece)
    if control:
        byte = control.group(0)[0]
        what = "a NUL byte" if byte == 0 else f"the control character 0x{byte:02X}"
        raise QueryTextError(f"Line {number} contains {what} at column {control.start() + 1}; "
                             "a query file is plain text (is this a binary or UTF-16 file?).")
    try:
        text = piece.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise QueryTextError(
            f"Line {number} is not ASCII or UTF-8 (byte 0x{piece[exc.start]:02X} at column {exc.start + 1}); "
            "save the file as UTF-8.") from None
    if len(text) > max_line_chars:
        raise QueryTextError(f"Line {number} is {len(text)} characters long; "
                             f"at most {max_line_chars} are allowed.")
    return text


# -- one line -----------------------------------------------------------------------

@dataclass(frozen=True)
class JournalQuery:
    issns: tuple[str, ...]  # canonical NNNN-NNNC
    title: str
    author: str
    volume: str
    issue: str
    page: str
    year: int | None
    key: str
    bad_issns: tuple[str, ...] = ()  # canonical form of ISSNs whose check digit is wrong (weak hints)


@dataclass(frozen=True)
class BookQuery:
    isbns: tuple[str, ...]  # 13 digits
    issns: tuple[str, ...]
    series_title: str
    volume_title: str
    author: str
    volume: str
    edition: str
    page: str
    year: int | None
    component: str
    key: str
    bad_issns: tuple[str, ...] = ()


@dataclass(frozen=True)
class DoiLookup:
    doi: str
    key: str


Query = Union[JournalQuery, BookQuery, DoiLookup]


@dataclass(frozen=True)
class LineProblem:
    """Why a line is not a query: MALFORMED or REJECTED, and a sentence saying why."""

    code: str
    detail: str


@dataclass(frozen=True)
class QueryLine:
    """One line of a query file: its text, its fields, and the query or the problem it holds."""

    number: int
    fields: tuple[str, ...]
    query: Query | None = None
    problem: LineProblem | None = None

    @property
    def is_blank(self) -> bool:
        return self.query is None and self.problem is None

    @property
    def notes(self) -> tuple[str, ...]:
        """What the answer must say about fields the matcher could not use as given."""
        bad = getattr(self.query, "bad_issns", ())
        return tuple(f"ISSN {issn!r} has a wrong check digit; it was used only as a weak hint "
                     "(the line was matched on its other fields)" for issn in bad)

    @property
    def doi_slot(self) -> int | None:
        """Index of the DOI field when the line is a 10- or 12-field metadata query."""
        if isinstance(self.query, (JournalQuery, BookQuery)):
            return len(self.fields) - 1
        return None


def parse_lines(lines: Iterable[str], start: int = 1) -> Iterator[QueryLine]:
    for number, text in enumerate(lines, start):
        yield parse_line(number, text)


def parse_line(number: int, text: str) -> QueryLine:
    """Parse one line into a query, a problem, or a blank line; never raises."""
    if not text.strip():
        return QueryLine(number, ())
    fields = tuple(text.split("|"))
    trimmed = [f.strip() for f in fields]
    if not any(trimmed):
        return QueryLine(number, fields, problem=LineProblem(MALFORMED, "the line has only empty fields"))
    lookup = _doi_lookup(trimmed)
    if isinstance(lookup, DoiLookup):
        return QueryLine(number, fields, query=lookup)
    if lookup is not None:
        return QueryLine(number, fields, problem=lookup)
    try:
        if len(fields) == len(JOURNAL_FIELDS):
            query: Query = _journal_query(trimmed)
        elif len(fields) == len(BOOK_FIELDS):
            query = _book_query(trimmed)
        else:
            return QueryLine(number, fields, problem=LineProblem(MALFORMED, _field_count_message(len(fields))))
    except QueryProblem as problem:
        return QueryLine(number, fields, problem=LineProblem(problem.code, problem.detail))
    return QueryLine(number, fields, query=query)


class QueryProblem(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _field_count_message(count: int) -> str:
    noun = "field" if count == 1 else "fields"
    return (f"wrong field count: {count} {noun}; a journal query has 10 fields, a book or "
            "conference query 12, a DOI look-up is DOI or KEY|DOI")


def _looks_like_doi(text: str) -> bool:
    return text.startswith("10.") or bool(_DOI_URL.match(text))


def _doi_lookup(trimmed: list[str]) -> DoiLookup | LineProblem | None:
    """A look-up when, leading empty fields dropped, the line is DOI or KEY|DOI."""
    rest = trimmed[:]
    while rest and not rest[0]:
        rest.pop(0)
    if len(rest) not in (1, 2) or not _looks_like_doi(rest[-1]):
        return None
    doi = _DOI_URL.sub("", rest[-1]).strip()
    problem = doi_problem(doi)
    if problem:
        return LineProblem(MALFORMED, f"not a DOI ({problem})")
    return DoiLookup(doi=doi, key=rest[0] if len(rest) == 2 else "")


def _identifier_tokens(text: str) -> list[str]:
    return [t for t in _ID_SEPARATORS.split(text) if t]


def _issns(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The valid ISSNs of a field and, apart, those with a wrong check digit (typos: weak hints)."""
    found, bad = [], []
    for token in _identifier_tokens(text):
        issn = parse_issn(token)
        if issn is None:
            raise QueryProblem(MALFORMED, f"ISSN {token!r} is not an ISSN (8 characters, NNNN-NNNC)")
        (found if issn.valid_check_digit else bad).append(issn.canonical)
    return tuple(dict.fromkeys(found)), tuple(dict.fromkeys(bad))


def _isbns_and_issns(text: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    isbns, issns, bad_issns = [], [], []
    for token in _identifier_tokens(text):
        if parse_issn(token) is not None:  # eight characters: an ISSN
            good, bad = _issns(token)
            issns.extend(good)
            bad_issns.extend(bad)
            continue
        isbn = parse_isbn(token)
        if isbn is None:
            raise QueryProblem(MALFORMED, f"ISBN/ISSN {token!r} is neither an ISBN (10 or 13 digits) nor an ISSN")
        if not isbn.valid_check_digit:
            raise QueryProblem(MALFORMED, f"ISBN {token!r} has a wrong check digit")
        isbns.append(isbn.canonical)
    return tuple(dict.fromkeys(isbns)), tuple(dict.fromkeys(issns)), tuple(dict.fromkeys(bad_issns))


def _year(text: str) -> int | None:
    if not text:
        return None
    year = year_of(text)
    if year is None:
        raise QueryProblem(MALFORMED, f"YEAR {text!r} is not a four-digit year")
    return year


def _require_author_or_page(author: str, page: str) -> None:
    if not author and not page:
        raise QueryProblem(REJECTED, "a query must give the first author's surname or the first page (or both)")


def journal_query(issn: str, title: str, author: str, volume: str, issue: str, page: str, year: str,
                  key: str) -> JournalQuery:
    """A journal query from its fields' text (trimmed); raises ``QueryProblem`` when it cannot be one.

    The piped line and the XML ``query_batch`` both come here, so both formats obey the same rules.
    """
    issns, bad_issns = _issns(issn)
    parsed_year = _year(year)
    if not issns and not bad_issns and not title:
        raise QueryProblem(REJECTED, "a journal query must give the journal's ISSN or its title")
    _require_author_or_page(author, page)
    return JournalQuery(issns=issns, title=title, author=author, volume=volume, issue=issue, page=page,
                        year=parsed_year, key=key, bad_issns=bad_issns)


def _journal_query(f: list[str]) -> JournalQuery:
    return journal_query(f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[8])


def book_query(identifiers: str, series_title: str, volume_title: str, author: str, volume: str, edition: str,
               page: str, year: str, component: str, key: str) -> BookQuery:
    """A book or proceedings query from its fields' text (trimmed); raises ``QueryProblem`` when it cannot be one."""
    isbns, issns, bad_issns = _isbns_and_issns(identifiers)
    parsed_year = _year(year)
    if not isbns and not issns and not bad_issns and not series_title and not volume_title:
        raise QueryProblem(REJECTED, "a book or conference query must give an ISBN, an ISSN, "
                                 "the series title or the volume title")
    _require_author_or_page(author, page)
    return BookQuery(isbns=isbns, issns=issns, series_title=series_title, volume_title=volume_title, author=author,
                     volume=volume, edition=edition, page=page, year=parsed_year, component=component, key=key,
                     bad_issns=bad_issns)


def _book_query(f: list[str]) -> BookQuery:
    return book_query(f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[10])


# -- answers ------------------------------------------------------------------------

@dataclass(frozen=True)
class Found:
    doi: str


@dataclass(frozen=True)
class NoMatch:
    detail: str = "no registered record fits the query"


@dataclass(frozen=True)
class Ambiguous:
    candidates: tuple[str, ...]


@dataclass(frozen=True)
class RecordFields:
    """A record's metadata as a DOI look-up answers it, in journal or book layout."""

    doi: str
    is_journal: bool
    issns: tuple[str, ...] = ()
    isbns: tuple[str, ...] = ()
    title: str = ""  # journal title, or the book series title
    volume_title: str = ""  # the book or proceedings title
    author: str = ""
    volume: str = ""
    issue: str = ""
    edition: str = ""
    page: str = ""
    year: int | None = None
    component: str = ""
    resource_type: str = "full_text"


Outcome = Union[Found, NoMatch, Ambiguous, RecordFields]


def _clean(text: str) -> str:
    """A value safe inside one field: no bars, no line breaks."""
    return " ".join(text.replace("|", "%7C").split())


def diagnostic(code: str, detail: str) -> str:
    return f"{code}: {_clean(detail)}" if detail else code


def answer_line(line: QueryLine, outcome: Outcome | None = None) -> str:
    """The answer to one line, in the documented form (see the module docstring)."""
    if line.is_blank:
        return ""
    echo = "|".join(line.fields)
    if line.problem is not None:
        return f"{echo}|{diagnostic(line.problem.code, line.problem.detail)}"
    notes = "; ".join(line.notes)
    if isinstance(outcome, Found) and line.doi_slot is not None:
        fields = list(line.fields)
        fields[line.doi_slot] = outcome.doi
        if notes:
            fields.append(diagnostic(NOTE, notes))
        return "|".join(fields)
    if isinstance(outcome, RecordFields) and isinstance(line.query, DoiLookup):
        return record_line(outcome, line.query.key)
    if isinstance(outcome, Ambiguous):
        shown = " ".join(_clean(doi) for doi in outcome.candidates[:MAX_CANDIDATES_SHOWN])
        return f"{echo}|{diagnostic(AMBIGUOUS, shown + (f' ({notes})' if notes else ''))}"
    detail = outcome.detail if isinstance(outcome, NoMatch) else "no registered record fits the query"
    return f"{echo}|{diagnostic(NO_MATCH, detail + (f'; {notes}' if notes else ''))}"


def record_line(record: RecordFields, key: str) -> str:
    """A record in the piped layout: 10 fields for journal articles, 12 for the rest."""
    year = str(record.year) if record.year else ""
    if record.is_journal:
        fields = [",".join(record.issns), record.title, record.author, record.volume, record.issue,
                  record.page, year, record.resource_type, key, record.doi]
    else:
        fields = [",".join(record.isbns + record.issns), record.title, record.volume_title, record.author,
                  record.volume, record.edition, record.page, year, record.component, record.resource_type,
                  key, record.doi]
    return "|".join(_clean(f) if i < len(fields) - 1 else f for i, f in enumerate(fields))


def outcome_code(line: QueryLine, outcome: Outcome | None) -> str:
    """The line's status word for counts: found, NO_MATCH, AMBIGUOUS, MALFORMED, REJECTED or blank."""
    if line.is_blank:
        return "blank"
    if line.problem is not None:
        return line.problem.code
    if isinstance(outcome, (Found, RecordFields)):
        return "found"
    if isinstance(outcome, Ambiguous):
        return AMBIGUOUS
    return NO_MATCH
