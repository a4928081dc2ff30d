"""The metadata of every DOI in a ``doi_batch``, streamed for the metadata database load.

Records are numbered exactly as ``agency.deposit.extraction`` numbers them (one per
``doi_data``, one per ``pending_publication/doi``, in document order), so the
N-th ``record_diagnostic`` of a batch log is the N-th record here.

A record is the element that carries the ``doi_data`` (journal_article,
content_item, conference_paper, dataset, component, ...), read when its
``doi_data`` ends: every field the deposit schemas allow comes before it. What it inherits from
its containers (journal titles and ISSNs, the issue's volume, the book's title,
ISBNs and series, the proceedings title) is read from the container elements
that precede it, which stay in memory while the records themselves are
cleared once read, so memory stays flat however many articles a journal has.
Element names are matched without their namespace: every Crossref schema
version (4.3.0 to 5.x) and the grant_id schema share them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from lxml import etree

from agency.metadata.text_keys import year_of
from agency.deposit.validation import LOCAL_NAMES, hardened_parser_options, local_name

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
# Only these element ends are reported by the parser: a record is read when its doi_data ends (every
# field the schemas allow comes before doi_data); container ends refresh the inherited context; the
# ends of <body>'s children free their memory.
_EVENT_TAGS = tuple("{*}" + name for name in sorted(
    {"doi_data", "head"} | CONTEXT_TAGS | {
        "journal", "book", "conference", "sa_component", "dissertation", "report-paper", "standard", "database",
        "posted_content", "peer_review", "pending_publication", "grant"}))
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

    def inherited(self, seq: int, doi: str, url: str | None, timestamp: str | None,
                  content_type: str) -> "RecordMetadata":
        """A record with what this one (its containers' context) gives it: the fields in their declared
        order, by position (a third of the cost of passing them by name, once per record)."""
        return RecordMetadata(seq, doi, url, timestamp, content_type, self.body_type, self.publication_type, None,
                              self.journal_title, self.journal_abbrev, self.series_title, self.volume_title,
                              self.volume, self.issue, None, None, self.edition_number, None, self.year,
                              self.publisher, [], list(self.identifiers))


@dataclass(slots=True)
class BatchHead:
    batch_id: str | None = None
    timestamp: str | None = None
    depositor_name: str | None = None
    email: str | None = None
    registrant: str | None = None


_LOCAL = LOCAL_NAMES
_year_of = lru_cache(maxsize=1024)(year_of)  # a batch's dates repeat a few years: one regex search each


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split())
    return text or None


def _child(element, name: str):
    """The first child with local name ``name`` (a plain loop: cheaper than lxml's filtered
    iterator on the few children these elements have). Children are looped over as a slice here and
    below: ``element[:]`` builds the list in one call, about half the cost of lxml's child iterator."""
    local = _LOCAL
    for child in element[:]:
        if local[child.tag] == name:
            return child
    return None


def _children(element, name: str) -> Iterator:
    return element.iterchildren("{*}" + name)


def _text(element, *path: str) -> str | None:
    """The cleaned text of the first element along ``path`` (local names), or None."""
    node = element
    for name in path:
        node = _child(node, name)
        if node is None:
            return None
    return _leaf_text(node)


def _leaf_text(node) -> str | None:
    text = "".join(node.itertext()) if len(node) else node.text  # markup inside (face markup, MathML)
    if not text:
        return None
    return " ".join(text.split()) or None


class _Kids:
    """An element's children by local name, read in one pass: the first of each name, and every
    issn, isbn and person_name (the only repeated children the index needs)."""

    __slots__ = ("first", "ids", "people")

    def __init__(self, element) -> None:
        first: dict[str, object] = {}
        ids: list = []
        people: list = []
        local = _LOCAL
        for child in element[:]:
            name = local[child.tag]
            if name not in first:
                first[name] = child
            if name == "issn" or name == "isbn":
                ids.append((name, child))
            elif name == "person_name":
                people.append(child)
        self.first, self.ids, self.people = first, ids, people

    def get(self, name: str):
        return self.first.get(name)

    def text(self, name: str, *path: str) -> str | None:
        node = self.first.get(name)
        if node is None:
            return None
        return _text(node, *path) if path else _leaf_text(node)


def _year(kids: _Kids) -> int | None:
    first = kids.first
    for name in _DATES:
        date = first.get(name)
        if date is None:
            continue
        if name == "database_date":
            for inner in ("publication_date", "creation_date", "update_date"):
                year = _year_of(_text(date, inner, "year"))
                if year:
                    return year
            continue
        year = _date_year(date)
        if year:
            return year
    return None


def _date_year(date) -> int | None:
    """The year of a date element: its <year>, else a year in its own text."""
    return _year_of(_text(date, "year")) or _year_of(_clean(date.text))


def _person(node) -> Contributor:
    surname = given_name = orcid = None
    for child in node[:]:
        name = _LOCAL[child.tag]
        if name == "surname":
            surname = _leaf_text(child)
        elif name == "given_name":
            given_name = _leaf_text(child)
        elif name == "ORCID":
            orcid = _leaf_text(child)
    return Contributor("person", node.get("contributor_role"), node.get("sequence"), surname, given_name, orcid)


def _contributors(kids: _Kids) -> list[Contributor]:
    group = kids.get("contributors")
    found = _listed(group) if group is not None else []
    if kids.people:  # dissertation: person_name directly
        found.extend(_person(node) for node in kids.people)
    return found


def _listed(group) -> list[Contributor]:
    """The persons and organizations of a <contributors> element, in order."""
    found: list[Contributor] = []
    local = _LOCAL
    for node in group[:]:
        name = local[node.tag]
        if name == "person_name":
            found.append(_person(node))
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


def _identifiers(kids: _Kids, into: list[IdentifierText]) -> None:
    for name, child in kids.ids:
        raw = _clean(child.text)
        if raw:
            into.append(IdentifierText(name, raw, child.get("media_type")))


def _apply_container(name: str, kids: _Kids, record: RecordMetadata) -> None:
    """Fields a container gives the records inside or after it (later containers win)."""
    if name == "journal_metadata":
        record.journal_title = kids.text("full_title") or record.journal_title
        record.journal_abbrev = kids.text("abbrev_title") or record.journal_abbrev
        _identifiers(kids, record.identifiers)
        return
    if name == "journal_issue":
        record.volume = kids.text("journal_volume", "volume") or record.volume
        record.issue = kids.text("issue") or record.issue
        record.year = _year(kids) or record.year
        return
    if name == "event_metadata":
        record.volume_title = record.volume_title or kids.text("conference_name")
        return
    # Book, proceedings, report, standard and database metadata share most names.
    title = kids.text("proceedings_title") or kids.text("titles", "title")
    if title:
        record.volume_title = title
    series = kids.get("series_metadata")
    if series is None:
        series = kids.get("set_metadata")
    if series is not None:
        series_kids = _Kids(series)
        record.series_title = series_kids.text("titles", "title") or record.series_title
        _identifiers(series_kids, record.identifiers)
    record.volume = kids.text("volume") or record.volume
    record.edition_number = kids.text("edition_number") or record.edition_number
    record.publisher = kids.text("publisher", "publisher_name") or record.publisher
    record.year = _year(kids) or record.year
    _identifiers(kids, record.identifiers)


def _article_number(kids: _Kids) -> str | None:
    """Page-less journals (eLife e00666): the article number stands for the first page."""
    item = kids.get("publisher_item")
    return _article_number_in(item) if item is not None else None


def _article_number_in(item) -> str | None:
    """The article number of a <publisher_item>, if it has one."""
    for number in _children(item, "item_number"):
        if number.get("item_number_type") == "article_number":
            return _clean(number.text)
    return None


def _apply_own(element, record: RecordMetadata) -> None:
    """The record element's own fields."""
    if record.content_type not in PLAIN_RECORDS or not _apply_plain(element, record):
        _apply_any(element, record)
    for attribute in _TYPE_ATTRIBUTES:
        value = element.get(attribute)
        if value:
            record.publication_type = value
            break


# Records read by _apply_plain when they hold nothing unusual: every one of them takes the general
# path's last branch ("not in CONTEXT_TAGS") and none of its special cases.
PLAIN_RECORDS = frozenset({"journal_article", "conference_paper", "content_item", "dataset", "posted_content",
                           "peer_review", "component"})
# What _apply_plain reads of a record, in the order it unpacks them.
_PLAIN_CHILDREN_READ = ("titles", "contributors", "publication_date", "pages", "publisher_item")
_PLAIN_CHILDREN = frozenset(_PLAIN_CHILDREN_READ)
# What _apply_any reads of such a record that _apply_plain does not: with any of these, the general path.
_UNUSUAL_CHILDREN = frozenset({"issn", "isbn", "person_name", "volume", "edition_number", "publisher",
                               "component_number", *(_DATES[1:])})


def _apply_plain(element, record: RecordMetadata) -> bool:
    """The common record (titles, contributors, a publication date, pages, a publisher item, and what
    no field is read from) in one pass over its children, with what ``_apply_any`` gives it; False,
    the record untouched, when the record holds anything else ``_apply_any`` reads."""
    found: dict[str, object] = {}  # the first child of each name _PLAIN_CHILDREN reads
    local = _LOCAL
    for child in element[:]:
        name = local[child.tag]
        if name in _PLAIN_CHILDREN:
            if name not in found:
                found[name] = child
        elif name in _UNUSUAL_CHILDREN:
            return False
    titles, contributors, date, pages, item = (found.get(name) for name in _PLAIN_CHILDREN_READ)
    if titles is not None:
        record.title = _text(titles, "title") or record.title
    if pages is not None:
        bounds: dict[str, object] = {}
        for child in pages[:]:
            name = local[child.tag]
            if (name == "first_page" or name == "last_page") and name not in bounds:
                bounds[name] = child
        first, last = bounds.get("first_page"), bounds.get("last_page")
        record.first_page = _leaf_text(first) if first is not None else None
        record.last_page = _leaf_text(last) if last is not None else None
    if record.first_page is None and item is not None:
        record.first_page = _article_number_in(item)
    if date is not None:
        record.year = _date_year(date) or record.year
    record.contributors = _listed(contributors) if contributors is not None else []
    return True


def _apply_any(element, record: RecordMetadata) -> None:
    """The record element's own fields, whatever the record (see ``_apply_own``)."""
    name = record.content_type
    kids = _Kids(element)
    if name in CONTEXT_TAGS:
        _apply_container(name, kids, record)
    if name == "journal_metadata":
        record.title = record.journal_title
    elif name == "proceedings_metadata" or name == "proceedings_series_metadata":
        record.title = record.volume_title
    elif name == "journal_volume":
        record.volume = kids.text("volume") or record.volume
    else:
        record.title = kids.text("titles", "title") or record.title
    if name in ("series_metadata", "set_metadata"):
        record.series_title = record.title
        _identifiers(kids, record.identifiers)
    elif name == "pending_publication":
        publication = kids.get("publication")
        if publication is not None:
            publication_kids = _Kids(publication)
            record.journal_title = publication_kids.text("full_title")
            record.journal_abbrev = publication_kids.text("abbrev_title")
            record.volume_title = publication_kids.text("proceedings_title") or publication_kids.text("book_title")
            _identifiers(publication_kids, record.identifiers)
    elif name not in CONTEXT_TAGS:
        _identifiers(kids, record.identifiers)
        record.volume = kids.text("volume") or record.volume
        record.edition_number = kids.text("edition_number") or record.edition_number
        record.publisher = kids.text("publisher", "publisher_name") or record.publisher
    pages = kids.get("pages")
    if pages is not None:
        record.first_page = _text(pages, "first_page")
        record.last_page = _text(pages, "last_page")
    if record.first_page is None:
        record.first_page = _article_number(kids)
    record.component_number = kids.text("component_number")
    record.year = _year(kids) or record.year
    record.contributors = _contributors(kids)
    if name == "dissertation":
        record.publisher = kids.text("institution", "institution_name") or record.publisher
    elif name == "standard_metadata" and record.publisher is None:
        record.publisher = kids.text("standards_body", "standards_body_name")
    elif name == "grant":
        _grant_fields(element, record)


def _dedupe_identifiers(record: RecordMetadata) -> None:
    if len(record.identifiers) < 2:  # most records: nothing to compare
        return
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
        self._context_cache: tuple[object, RecordMetadata] | None = None  # (parent, what its containers give)

    def __iter__(self) -> Iterator[RecordMetadata]:
        seq = 0
        with open(self.path, "rb") as fh:
            events = etree.iterparse(fh, events=("end",), tag=_EVENT_TAGS, **hardened_parser_options())
            for _event, element in events:
                name = _LOCAL[element.tag]
                if name == "doi_data":
                    parent = element.getparent()
                    if parent is not None:
                        seq += 1
                        doi, url, stamp = _doi_data(element)
                        yield self._record(parent, seq, doi, url, stamp)
                        if seq % FORGET_EVERY == 0:
                            _forget_before(parent)
                    continue
                if name == "pending_publication":  # a DOI without doi_data: its <doi> is the last child
                    doi = _child(element, "doi")
                    if doi is not None:
                        seq += 1
                        yield self._record(element, seq, _leaf_text(doi) or "", None, None)
                if name == "head":
                    self._read_head(element)
                    continue
                self._ended(element, name)
        self.record_count = seq

    def _ended(self, element, name: str) -> None:
        """A container or record ended: refresh the inherited context, forget what is read."""
        if name in CONTEXT_TAGS:
            self._context_cache = None
        parent = element.getparent()
        if parent is not None and local_name(parent.tag) == "body":
            self._context_cache = None
            _empty(element)
            while element.getprevious() is not None:
                del parent[0]

    def _read_head(self, head) -> None:
        self.head = BatchHead(
            batch_id=_text(head, "doi_batch_id"), timestamp=_text(head, "timestamp"),
            depositor_name=_text(head, "depositor", "depositor_name"),
            email=_text(head, "depositor", "email_address"), registrant=_text(head, "registrant"))

    def _record(self, element, seq: int, doi: str, url: str | None, stamp: str | None) -> RecordMetadata:
        record = self._base_for(element).inherited(seq, doi, url, stamp or self.head.timestamp, _LOCAL[element.tag])
        _apply_own(element, record)
        if record.publication_type is None:
            top = _top_level(element)
            if top is not None and top is not element:
                record.publication_type = top.get("book_type") or top.get("type")
        if record.publisher is None:
            record.publisher = self.head.registrant
        _dedupe_identifiers(record)
        return record

    def _base_for(self, element) -> RecordMetadata:
        """What the completed containers before ``element`` give it (cached until a container ends)."""
        parent = element.getparent()
        cached = self._context_cache
        if cached is not None and cached[0] is parent:
            return cached[1]
        base = RecordMetadata(seq=0, doi="", url=None, timestamp=None, content_type="",
                              body_type=_body_type(element))
        ancestors = []
        node = parent
        while node is not None and local_name(node.tag) not in ("body", "doi_batch"):
            ancestors.append(node)
            node = node.getparent()
        for ancestor in reversed(ancestors):
            for child in ancestor:
                name = local_name(child.tag)
                if name in CONTEXT_TAGS and child is not element and child not in ancestors:
                    _apply_container(name, _Kids(child), base)
        self._context_cache = (parent, base)
        return base



def _forget_before(record) -> None:
    """Drop the records read before ``record`` among its siblings (containers stay: later records need them).

    Called once every ``FORGET_EVERY`` records read (and when a body item ends, which drops it whole),
    so at most that many read records, and what follows the last one's doi_data, like a citation
    list, stay in memory however many records a container holds; dropped in one slice delete.
    """
    parent = record.getparent()
    if parent is None or _LOCAL[parent.tag] in CONTEXT_TAGS:
        return
    count = 0
    previous = record.getprevious()
    while previous is not None and _LOCAL[previous.tag] not in CONTEXT_TAGS:
        _empty_wide(previous)
        count += 1
        previous = previous.getprevious()
    if count:
        end = parent.index(record)
        del parent[end - count:end]


FORGET_EVERY = 64  # records read between two drops of the records read before them

# An element with more children than this is emptied on its own before its ancestors let go of it.
WIDE_ELEMENT_CHILDREN = 256


def _empty(element) -> None:
    """Drop an element's content in time linear in its size.

    lxml's ``clear()`` or ``remove()`` of a subtree holding one very wide element (a title of
    320,000 inline elements) takes quadratic time (measured: 40,000 → 0.6 s, 320,000 → 25 s),
    while a slice delete on the wide element itself does not; so the wide ones, deepest first,
    are emptied that way before the rest is cleared."""
    _empty_wide(element)
    element.clear()


def _empty_wide(element) -> None:
    """Empty the wide elements of ``element``'s subtree, deepest first (see ``_empty``)."""
    wide = [node for node in element.iter() if len(node) > WIDE_ELEMENT_CHILDREN]
    for node in reversed(wide):
        del node[:]


def _doi_data(element) -> tuple[str, str, str | None]:
    """(doi, resource URL, own timestamp) of a doi_data element, read in one pass."""
    doi = url = ""
    stamp = None
    for child in element[:]:
        name = _LOCAL[child.tag]
        if name == "doi":
            doi = _leaf_text(child) or ""
        elif name == "resource":
            url = _leaf_text(child) or ""
        elif name == "timestamp":
            stamp = _leaf_text(child)
    return doi, url, stamp


def _top_level(element):
    node = element
    while node is not None:
        parent = node.getparent()
        if parent is not None and local_name(parent.tag) == "body":
            return node
        node = parent
    return None


def _body_type(element) -> str:
    top = _top_level(element)
    return local_name(top.tag) if top is not None else "unknown"
