"""Crossref's XML query batches: reading a ``query_batch`` and writing its ``crossref_result``.

Crossref prefers XML to piped lines for queries: a ``query_batch`` (query
schema 2.0, ``http://www.crossref.org/qschema/2.0``) whose ``query`` elements
carry a key and any of a citation's fields. Each query becomes the same
``QueryLine`` a piped line does (``piped_format.journal_query`` /
``book_query``), so both formats obey one set of rules and one matcher.

The answer is Crossref's query output 2.0 (``crossref_result``): one ``query``
element per query, keyed by its key, with ``status`` ``resolved`` (the DOI),
``unresolved`` (a ``msg`` saying why) or ``multiresolved`` (one element per
candidate DOI, best first); the query's fields are echoed.

A batch is read like a deposit: the hardened parser (no DTD, no entities, no
network), DOCTYPE refused, our own XSD (``schemas/crossref-query/``) checked,
and the number of queries bounded (``AGENCY_QUERY_XML_MAX_QUERIES``), as is
its size (``AGENCY_QUERY_XML_MAX_BYTES``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from lxml import etree

from agency.deposit.validation import hardened_parser_options
from agency.query.piped_format import (
    MALFORMED, NOTE, REJECTED, Ambiguous, BookQuery, DoiLookup, Found, JournalQuery, LineProblem, NoMatch, Outcome,
    QueryLine, QueryProblem, QueryTextError, RecordFields, TooManyLines, book_query, diagnostic, journal_query,
)
from agency.handles.doi_syntax import doi_problem

QUERY_NAMESPACE = "http://www.crossref.org/qschema/2.0"
RESULT_NAMESPACE = "http://www.crossref.org/qrschema/2.0"
INPUT_SCHEMA = "crossref_query_input2.0.xsd"
UNSUPPORTED = "UNSUPPORTED"
RESOLVED, UNRESOLVED, MULTIRESOLVED = "resolved", "unresolved", "multiresolved"
_FIELDS = ("issn", "isbn", "journal_title", "series_title", "volume_title", "author", "volume", "issue",
           "edition_number", "first_page", "year", "component_number", "article_title", "publication_type", "doi",
           "unstructured_citation")
_BOOK_FIELDS = ("isbn", "series_title", "volume_title", "edition_number", "component_number")
_ECHOED = ("issn", "isbn", "journal_title", "series_title", "volume_title", "author", "volume", "issue",
           "edition_number", "first_page", "year", "component_number")  # the output schema's order


class QueryXmlError(QueryTextError):
    """A query batch that cannot be read: not XML (400), hostile (400), or not our schema's (422)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class XmlQuery:
    """One ``query`` element: its key, the fields as given (for the echo) and the parsed line."""

    key: str
    fields: dict[str, list[str]]
    line: QueryLine


@dataclass(frozen=True)
class QueryBatch:
    email_address: str
    batch_id: str
    queries: list[XmlQuery]

    @property
    def lines(self) -> list[QueryLine]:
        return [q.line for q in self.queries]


_schemas = threading.local()  # lxml schema objects are not shared between threads


def _input_schema(schema_dir: Path) -> etree.XMLSchema:
    cached = getattr(_schemas, "input", None)
    if cached is None or cached[0] != schema_dir:
        path = schema_dir / "crossref-query" / INPUT_SCHEMA
        cached = (schema_dir, etree.XMLSchema(etree.parse(str(path), etree.XMLParser(no_network=True))))
        _schemas.input = cached
    return cached[1]


def looks_like_xml(data: bytes) -> bool:
    """A query text that starts (after a BOM and white space) with '<' is an XML batch."""
    return data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<"


def read_query_batch(data: bytes, schema_dir: Path, max_queries: int, max_bytes: int) -> QueryBatch:
    """Parse, check and read a ``query_batch``; raises ``QueryXmlError`` or ``TooManyLines`` (413)."""
    if len(data) > max_bytes:
        raise TooManyLines(f"The query batch is {len(data)} bytes; at most {max_bytes} are accepted. "
                           "Split it into smaller batches.")
    try:
        root = etree.fromstring(data, etree.XMLParser(**hardened_parser_options()))
    except etree.XMLSyntaxError as exc:
        raise QueryXmlError(f"The query batch is not well-formed XML: {exc.msg or exc}") from None
    if root.getroottree().docinfo.doctype:
        raise QueryXmlError("A DOCTYPE declaration was found: DTDs and entity declarations are not accepted "
                            "in query batches. Remove the <!DOCTYPE ...> line.")
    qname = etree.QName(root)
    if qname.localname != "query_batch" or qname.namespace != QUERY_NAMESPACE:
        raise QueryXmlError(f"The root element is {{{qname.namespace or ''}}}{qname.localname}; a query batch is "
                            f"<query_batch xmlns=\"{QUERY_NAMESPACE}\">.", status=422)
    ns = {"q": QUERY_NAMESPACE}
    elements = root.findall("q:body/q:query", ns)
    if len(elements) > max_queries:
        raise TooManyLines(f"The batch has {len(elements)} queries; at most {max_queries} are answered per batch. "
                           "Split it into smaller batches.")
    schema = _input_schema(schema_dir)
    if not schema.validate(root):
        error = schema.error_log.last_error
        raise QueryXmlError(f"The query batch does not follow the query schema (line {error.line}): "
                            f"{error.message}", status=422)
    return QueryBatch(_text(root.find("q:head/q:email_address", ns)), _text(root.find("q:head/q:doi_batch_id", ns)),
                      [_query(number, element) for number, element in enumerate(elements, 1)])


def _text(element) -> str:
    return " ".join((element.text or "").split()) if element is not None else ""


def _query(number: int, element) -> XmlQuery:
    fields: dict[str, list[str]] = {}
    for child in element:
        if not isinstance(child.tag, str):
            continue  # comments, processing instructions
        name = etree.QName(child).localname
        value = " ".join("".join(child.itertext()).split())
        if value:
            fields.setdefault(name, []).append(value)
    key = element.get("key") or ""
    return XmlQuery(key, fields, _line(number, key, fields))


def _line(number: int, key: str, fields: dict[str, list[str]]) -> QueryLine:
    def one(name: str) -> str:
        return fields.get(name, [""])[0]

    if "unstructured_citation" in fields:
        return QueryLine(number, (), problem=LineProblem(
            UNSUPPORTED, "unstructured citations are not matched here; give the citation's fields "
                         "(ISSN or journal title, first author, volume, issue, first page, year)"))
    metadata = [name for name in fields if name not in ("doi", "article_title", "publication_type")]
    if "doi" in fields and not metadata:
        problem = doi_problem(one("doi"))
        if problem:
            return QueryLine(number, (), problem=LineProblem(MALFORMED, f"not a DOI ({problem})"))
        return QueryLine(number, (), query=DoiLookup(doi=one("doi"), key=key))
    try:
        if any(name in fields for name in _BOOK_FIELDS):
            query: JournalQuery | BookQuery = book_query(
                " ".join(fields.get("isbn", []) + fields.get("issn", [])), one("series_title"), one("volume_title"),
                one("author"), one("volume"), one("edition_number"), one("first_page"), one("year"),
                one("component_number"), key)
        else:
            query = journal_query(" ".join(fields.get("issn", [])), one("journal_title"), one("author"),
                                  one("volume"), one("issue"), one("first_page"), one("year"), key)
    except QueryProblem as problem:
        return QueryLine(number, (), problem=LineProblem(problem.code, problem.detail))
    if not metadata:
        return QueryLine(number, (), problem=LineProblem(REJECTED, "the query gives no field to match"))
    return QueryLine(number, (), query=query)


# -- the answer ---------------------------------------------------------------------

def _element(parent, name: str, text: str | None = None, **attributes: str):
    child = etree.SubElement(parent, f"{{{RESULT_NAMESPACE}}}{name}", {k: v for k, v in attributes.items() if v})
    if text is not None:
        child.text = text
    return child


def _echo(parent, query: XmlQuery) -> None:
    for name in _ECHOED:
        values = query.fields.get(name, [])
        for value in values if name in ("issn", "isbn") else values[:1]:
            _element(parent, name, value)


def _answer(body, query: XmlQuery, status: str, doi: str | None, doi_type: str | None, msg: str) -> None:
    element = _element(body, "query", key=query.key or str(query.line.number), status=status, fl_count="0")
    if doi:
        _element(element, "doi", doi, type=doi_type or "")
    _echo(element, query)
    if msg:
        _element(element, "msg", msg)


def _record_answer(body, query: XmlQuery, record: RecordFields) -> None:
    element = _element(body, "query", key=query.key or str(query.line.number), status=RESOLVED, fl_count="0")
    _element(element, "doi", record.doi, type="journal_article" if record.is_journal else "")
    for issn in record.issns:
        _element(element, "issn", issn)
    for isbn in record.isbns:
        _element(element, "isbn", isbn)
    titles = [("journal_title", record.title)] if record.is_journal else [("series_title", record.title),
                                                                         ("volume_title", record.volume_title)]
    for name, value in titles + [("author", record.author), ("volume", record.volume), ("issue", record.issue),
                                 ("edition_number", record.edition), ("first_page", record.page),
                                 ("year", str(record.year or "")), ("component_number", record.component)]:
        if value and (name != "issue" or record.is_journal) and (name != "edition_number" or not record.is_journal):
            _element(element, name, value)


def result_document(batch: QueryBatch, outcomes: Sequence[Outcome | None]) -> bytes:
    """The ``crossref_result`` for a batch: one ``query`` element per answer (per candidate when ambiguous)."""
    root = etree.Element(f"{{{RESULT_NAMESPACE}}}crossref_result", version="2.0", nsmap={None: RESULT_NAMESPACE})
    result = _element(root, "query_result")
    head = _element(result, "head")
    if batch.email_address:
        _element(head, "email_address", batch.email_address)
    _element(head, "doi_batch_id", batch.batch_id or "none")
    body = _element(result, "body")
    for query, outcome in zip(batch.queries, outcomes):
        line = query.line
        notes = "; ".join(line.notes)
        doi_type = "journal_article" if isinstance(line.query, JournalQuery) else None
        if line.problem is not None:
            _answer(body, query, UNRESOLVED, None, None, diagnostic(line.problem.code, line.problem.detail))
        elif isinstance(outcome, RecordFields):
            _record_answer(body, query, outcome)
        elif isinstance(outcome, Found):
            _answer(body, query, RESOLVED, outcome.doi, doi_type, diagnostic(NOTE, notes) if notes else "")
        elif isinstance(outcome, Ambiguous):
            for candidate in outcome.candidates:
                _answer(body, query, MULTIRESOLVED, candidate, doi_type,
                        f"one of {len(outcome.candidates)} records that fit equally well" + (f"; {notes}" if notes else ""))
        else:
            detail = outcome.detail if isinstance(outcome, NoMatch) else "no registered record fits the query"
            _answer(body, query, UNRESOLVED, None, None, diagnostic("NO_MATCH", detail + (f"; {notes}" if notes else "")))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def status_counts(batch: QueryBatch, outcomes: Sequence[Outcome | None]) -> dict[str, int]:
    """How many queries were resolved, unresolved or multiresolved (for response headers)."""
    counts = {RESOLVED: 0, UNRESOLVED: 0, MULTIRESOLVED: 0}
    for query, outcome in zip(batch.queries, outcomes):
        if query.line.problem is None and isinstance(outcome, (Found, RecordFields)):
            counts[RESOLVED] += 1
        elif query.line.problem is None and isinstance(outcome, Ambiguous):
            counts[MULTIRESOLVED] += 1
        else:
            counts[UNRESOLVED] += 1
    return counts
