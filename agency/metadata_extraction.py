"""The metadata of every DOI in a ``doi_batch``, streamed for the metadata database load.

Records are numbered exactly as ``agency.extraction`` numbers them (one per
``doi_data``, one per ``pending_publication/doi``, in document order), so the
N-th ``record_diagnostic`` of a batch log is the N-th record here.

A record is the element that carries the ``doi_data`` (journal_article,
content_item, conference_paper, dataset, component, ...). What it inherits from
its containers (journal titles and ISSNs, the issue's volume, the book's title,
ISBNs and series, the proceedings title) is read from the container elements
that precede it, which stay in memory while the records themselves are
cleared once read, so memory stays flat however many articles a journal has.
Element names are matched without their namespace: every Crossref schema
version (4.3.0 to 5.x) and the grant_id schema share them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from lxml import etree

from agency.text_keys import year_of
from agency.validation import hardened_parser_options

# Containers whose metadata applies to the records after them (they may carry a DOI themselves).
CONTEXT_TAGS = frozenset({
    "journal_metadata", "journal_issue", "book_metadata", "book_series_metadata", "book_set_metadata",
    "proceedings_metadata", "proceedings_series_metadata", "event_metadata", "report-paper_metadata",
    "report-paper_series_metadata", "standard_metadata", "database_metadata",
})
# Records whose title is expected (a missing one is a Warning).
TITLED = frozenset({
    "journal_article", "content_item", "conference_paper", "book_metadata", "book_series_metadata",
    "book_set_metadata", "dissertation", "report-paper_metadata", "report-paper_series_metadata",
    "standard_metadata", "database_metadata", "dataset", "posted_content", "peer_review", "grant",
    "journal_metadata", "proceedings_metadata", "proceedings_series_metadata", "series_metadata",
    "set_metadata", "pending_publication",
})
_TYPE_ATTRIBUTES = ("publication_type", "component_type", "dataset_type", "type", "book_type")
_DATES = ("publication_date", "posted_date", "approval_date", "review_date", "database_date",
          "acceptance_date", "award-start-date", "creation_date")


@dataclass(slots=True)
class Contributor:
    kind: str  # person | organization
    role: str | None
    sequence: str | None  # first | additional, as deposited
    surname: str | None  # or the organization's name
    given_name: str | None
    orcid: str | None


@dataclass(slots=True)
class IdentifierText:
    kind: str  # issn | isbn
    raw: str
    media_type: str | None


@dataclass(slots=True)
class RecordMetadata:
    """One DOI's metadata as deposited (keys are computed when it is indexed)."""

    seq: int
    doi: str
    url: str | None
    timestamp: str | None  # the record's own, else the batch's
    content_type: str
    body_type: str
    publication_type: str | None = None
    title: str | None = None
    journal_title: str | None = None
    journal_abbrev: str | None = None
    series_title: str | None = None
    volume_title: str | None = None
    volume: str | None = None
    issue: str | None = None
    first_page: str | None = None
    last_page: str | None = None
    edition_number: str | None = None
    component_number: str | None = None
    year: int | None = None
    publisher: str | None = None
    contributors: list[Contributor] = field(default_factory=list)
    identifiers: list[IdentifierText] = field(default_factory=list)

    @property
    def expects_title(self) -> bool:
        return self.content_type in TITLED


@dataclass(slots=True)
class BatchHead:
    batch_id: str | None = None
    timestamp: str | None = None
    depositor_name: str | None = None
    email: str | None = None
    registrant: str | None = None


_LOCAL: dict[str, str] = {}


def _local(tag) -> str:
    if not isinstance(tag, str):
        return ""
    name = _LOCAL.get(tag)
    if name is None:
        name = _LOCAL[tag] = tag.rsplit("}", 1)[-1]
    return name


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split())
    return text or None


def _child(element, name: str):
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _children(element, name: str) -> Iterator:
    for child in element:
        if _local(child.tag) == name:
            yield child


def _text(element, *path: str) -> str | None:
    """The cleaned text of the first element along ``path`` (local names), or None."""
    node = element
    for name in path:
        node = _child(node, name)
        if node is None:
            return None
    return _clean("".join(node.itertext()))


def _year(element) -> int | None:
    for name in _DATES:
        date = _child(element, name)
        if date is None:
            continue
        if name == "database_date":
            for inner in ("publication_date", "creation_date", "update_date"):
                year = year_of(_text(date, inner, "year"))
                if year:
                    return year
            continue
        year = year_of(_text(date, "year")) or year_of(_clean(date.text))
        if year:
            return year
    return None


def _contributors(element) -> list[Contributor]:
    found: list[Contributor] = []
    group = _child(element, "contributors")
    sources = list(group) if group is not None else []
    sources += list(_children(element, "person_name"))  # dissertation: person_name directly
    for node in sources:
        name = _local(node.tag)
        if name == "person_name":
            found.append(Contributor("person", node.get("contributor_role"), node.get("sequence"),
                                     _text(node, "surname"), _text(node, "given_name"), _text(node, "ORCID")))
        elif name == "organization":
            found.append(Contributor("organization", node.get("contributor_role"), node.get("sequence"),
                                     _clean("".join(node.itertext())), None, None))
    return found


def _grant_fields(grant, record: RecordMetadata) -> None:
    """grant_id schema: titles, investigators and funder live in <project>."""
    for project in _children(grant, "project"):
        if record.title is None:
            record.title = _text(project, "project-title")
        investigators = _child(project, "investigators")
        if investigators is not None and not record.contributors:
            for position, person in enumerate(_children(investigators, "person")):
                record.contributors.append(Contributor(
                    "person", person.get("role"), "first" if position == 0 else "additional",
                    _text(person, "familyName"), _text(person, "givenName"), _text(person, "ORCID")))
        if record.publisher is None:
            record.publisher = _text(project, "funding", "funder-name")
        if record.year is None:
            dates = _child(project, "award-dates")
            record.year = year_of(dates.get("start-date")) if dates is not None else None
    if record.year is None:
        record.year = year_of(_text(grant, "award-start-date"))


def _identifiers(element, into: list[IdentifierText]) -> None:
    for child in element:
        name = _local(child.tag)
        if name in ("issn", "isbn"):
            raw = _clean(child.text)
            if raw:
                into.append(IdentifierText(name, raw, child.get("media_type")))


def _apply_container(element, record: RecordMetadata) -> None:
    """Fields a container gives the records inside or after it (later containers win)."""
    name = _local(element.tag)
    if name == "journal_metadata":
        record.journal_title = _text(element, "full_title") or record.journal_title
        record.journal_abbrev = _text(element, "abbrev_title") or record.journal_abbrev
        _identifiers(element, record.identifiers)
        return
    if name == "journal_issue":
        volume = _child(element, "journal_volume")
        if volume is not None:
            record.volume = _text(volume, "volume") or record.volume
        record.issue = _text(element, "issue") or record.issue
        record.year = _year(element) or record.year
        return
    if name == "event_metadata":
        record.volume_title = record.volume_title or _text(element, "conference_name")
        return
    # Book, proceedings, report, standard and database metadata share most names.
    title = _text(element, "proceedings_title") or _text(element, "titles", "title")
    if title:
        record.volume_title = title
    series = _child(element, "series_metadata")
    if series is None:
        series = _child(element, "set_metadata")
    if series is not None:
        record.series_title = _text(series, "titles", "title") or record.series_title
        _identifiers(series, record.identifiers)
    record.volume = _text(element, "volume") or record.volume
    record.edition_number = _text(element, "edition_number") or record.edition_number
    record.publisher = _text(element, "publisher", "publisher_name") or record.publisher
    record.year = _year(element) or record.year
    _identifiers(element, record.identifiers)


def _apply_own(element, record: RecordMetadata) -> None:
    """The record element's own fields."""
    name = record.content_type
    if name in CONTEXT_TAGS:
        _apply_container(element, record)
    if name == "journal_metadata":
        record.title = record.journal_title
    elif name == "proceedings_metadata" or name == "proceedings_series_metadata":
        record.title = record.volume_title
    elif name == "journal_volume":
        record.volume = _text(element, "volume") or record.volume
    else:
        record.title = _text(element, "titles", "title") or record.title
    if name in ("series_metadata", "set_metadata"):
        record.series_title = record.title
        _identifiers(element, record.identifiers)
    if name == "pending_publication":
        publication = _child(element, "publication")
        if publication is not None:
            record.journal_title = _text(publication, "full_title")
            record.journal_abbrev = _text(publication, "abbrev_title")
            record.volume_title = _text(publication, "proceedings_title") or _text(publication, "book_title")
            _identifiers(publication, record.identifiers)
    if name not in CONTEXT_TAGS:
        _identifiers(element, record.identifiers)
        record.volume = _text(element, "volume") or record.volume
        record.edition_number = _text(element, "edition_number") or record.edition_number
        record.publisher = _text(element, "publisher", "publisher_name") or record.publisher
    pages = _child(element, "pages")
    if pages is not None:
        record.first_page = _text(pages, "first_page")
        record.last_page = _text(pages, "last_page")
    if record.first_page is None:  # page-less journals (eLife e00666): the article number stands for the page
        item = _child(element, "publisher_item")
        for number in _children(item, "item_number") if item is not None else ():
            if number.get("item_number_type") == "article_number":
                record.first_page = _clean(number.text)
                break
    record.component_number = _text(element, "component_number")
    record.year = _year(element) or record.year
    record.contributors = _contributors(element)
    if name == "dissertation":
        record.publisher = _text(element, "institution", "institution_name") or record.publisher
    elif name == "standard_metadata" and record.publisher is None:
        record.publisher = _text(element, "standards_body", "standards_body_name")
    elif name == "grant":
        _grant_fields(element, record)
    for attribute in _TYPE_ATTRIBUTES:
        value = element.get(attribute)
        if value:
            record.publication_type = value
            break


def _dedupe_identifiers(record: RecordMetadata) -> None:
    seen: set[tuple[str, str]] = set()
    unique = []
    for identifier in record.identifiers:
        key = (identifier.kind, identifier.raw)
        if key not in seen:
            seen.add(key)
            unique.append(identifier)
    record.identifiers = unique


class BatchMetadataReader:
    """Streams a batch's records; ``head`` is filled in before the first record is yielded."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.head = BatchHead()
        self.record_count = 0
        self._context_cache: tuple[object, list] | None = None

    def __iter__(self) -> Iterator[RecordMetadata]:
        open_records: list[tuple] = []  # (record element, seq, doi, url, timestamp), innermost last
        seq = 0
        with open(self.path, "rb") as fh:
            for _event, element in etree.iterparse(fh, events=("end",), **hardened_parser_options()):
                name = _local(element.tag)
                if not name:
                    continue
                parent = element.getparent()
                if name == "doi_data" and parent is not None:
                    seq += 1
                    stamp = _text(element, "timestamp")
                    open_records.append((parent, seq, _text(element, "doi") or "", _text(element, "resource") or "",
                                         stamp))
                elif name == "doi" and parent is not None and _local(parent.tag) == "pending_publication":
                    seq += 1
                    open_records.append((parent, seq, _clean(element.text) or "", None, None))
                elif open_records and open_records[-1][0] is element:
                    _, rseq, doi, url, stamp = open_records.pop()
                    yield self._record(element, rseq, doi, url, stamp)
                    self._release(element, parent)
                elif name == "head":
                    self._read_head(element)
                if name in CONTEXT_TAGS:
                    self._context_cache = None
                if parent is not None and _local(parent.tag) == "body":
                    self._context_cache = None
                    element.clear()
                    while element.getprevious() is not None:
                        del parent[0]
        self.record_count = seq

    def _read_head(self, head) -> None:
        self.head = BatchHead(
            batch_id=_text(head, "doi_batch_id"), timestamp=_text(head, "timestamp"),
            depositor_name=_text(head, "depositor", "depositor_name"),
            email=_text(head, "depositor", "email_address"), registrant=_text(head, "registrant"))

    def _record(self, element, seq: int, doi: str, url: str | None, stamp: str | None) -> RecordMetadata:
        record = RecordMetadata(seq=seq, doi=doi, url=url, timestamp=stamp or self.head.timestamp,
                                content_type=_local(element.tag), body_type=_body_type(element))
        for container in self._containers(element):
            _apply_container(container, record)
        _apply_own(element, record)
        if record.publication_type is None:
            top = _top_level(element)
            if top is not None and top is not element:
                record.publication_type = top.get("book_type") or top.get("type")
        if record.publisher is None:
            record.publisher = self.head.registrant
        _dedupe_identifiers(record)
        return record

    def _containers(self, element) -> list:
        """The completed containers before ``element`` in its ancestors, outermost first."""
        parent = element.getparent()
        cached = self._context_cache
        if cached is not None and cached[0] is parent:
            return [c for c in cached[1] if c is not element]
        found: list = []
        ancestors = []
        node = parent
        while node is not None and _local(node.tag) not in ("body", "doi_batch"):
            ancestors.append(node)
            node = node.getparent()
        for ancestor in reversed(ancestors):
            for child in ancestor:
                if _local(child.tag) in CONTEXT_TAGS and child is not element and child not in ancestors:
                    found.append(child)
        self._context_cache = (parent, found)
        return found

    def _release(self, element, parent) -> None:
        """Forget a record once read, unless it belongs to a container that later records need."""
        if parent is None or _local(element.tag) in CONTEXT_TAGS or _local(parent.tag) in CONTEXT_TAGS:
            return
        element.clear(keep_tail=True)
        previous = element.getprevious()
        while previous is not None and _local(previous.tag) not in CONTEXT_TAGS:
            parent.remove(previous)
            previous = element.getprevious()


def _top_level(element):
    node = element
    while node is not None:
        parent = node.getparent()
        if parent is not None and _local(parent.tag) == "body":
            return node
        node = parent
    return None


def _body_type(element) -> str:
    top = _top_level(element)
    return _local(top.tag) if top is not None else "unknown"
