"""Deposit records from a validated ``doi_batch``, streamed so memory stays flat.

One record per ``doi_data`` (the DOI, its URL, its own timestamp when it has
one) plus one per ``pending_publication`` (a DOI registered before it has a
URL). Files reaching this module have passed validation already.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from lxml import etree

from agency.deposit.resources import resource_record
from agency.deposit.validation import hardened_parser_options, local_name


@dataclass(frozen=True)
class TitleContext:
    """A journal, book, series or proceedings a record belongs to, as deposited: what title records are
    made of. One object per body item, shared by its records."""

    kind: str  # journal | book | series | conference
    title: str
    issns: tuple[str, ...]
    isbns: tuple[str, ...]


@dataclass(frozen=True)
class Citation:
    """How a journal article is cited, as deposited (compared for "Added with conflict")."""

    volume: str | None
    issue: str | None
    first_page: str | None
    year: str | None


@dataclass(frozen=True)
class DepositRecord:
    seq: int  # 1-based position in the batch
    doi: str
    url: str | None
    timestamp: str | None  # the record's own, else the batch's
    content_type: str  # local name of the element that carries the DOI
    titles: tuple[TitleContext, ...] = ()
    citation: Citation | None = None

    @property
    def is_pending(self) -> bool:
        return self.url is None


RECORD_TAGS = ("{*}doi_data", "{*}pending_publication")


def iter_records(path: Path, batch_timestamp: str | None, skip: int = 0) -> Iterator[DepositRecord]:
    """Yield the batch's records in document order, after the first ``skip``.

    Only ``doi_data`` and ``pending_publication`` ends reach Python (lxml filters
    the rest in C); after each record, everything before it in the document is
    dropped, so memory stays flat however large the batch.
    """
    with open(path, "rb") as fh:
        context = etree.iterparse(fh, events=("end",), tag=RECORD_TAGS, **hardened_parser_options())
        elements = (element for _event, element in context)
        yield from _records(elements, batch_timestamp, skip, drop_preceding=True)


MAX_COLLECTED_RECORDS = 100_000


class RecordCollector:
    """The same records again, gathered from body items while a streaming validator reads them.

    Up to ``limit`` records (a batch of 100,000 takes about 40 MB this way); beyond,
    ``records`` is None and whoever needs them streams them from the file, so memory
    stays bounded however large the batch.
    """

    def __init__(self, limit: int = MAX_COLLECTED_RECORDS) -> None:
        self.records: list[DepositRecord] | None = []
        self.limit = limit

    def __call__(self, body_item: etree._Element, head) -> None:
        if self.records is None:
            return
        if head.is_resources:
            self.records.append(resource_record(len(self.records) + 1, body_item))
        else:
            self.records.extend(_records(body_item.iter(*RECORD_TAGS), head.timestamp, 0,
                                         drop_preceding=False, first_seq=len(self.records) + 1))
        if len(self.records) > self.limit:
            self.records = None


def _records(elements: Iterator[etree._Element], batch_timestamp: str | None, skip: int,
             drop_preceding: bool, first_seq: int = 1) -> Iterator[DepositRecord]:
    seq = first_seq - 1
    containers = _Containers()
    for element in elements:
        parent = element.getparent()
        if local_name(element.tag) == "pending_publication":
            element, parent = _pending_doi(element), element
            if element is None:
                continue
        seq += 1
        if parent is not None:
            containers.observe(parent)  # skipped records too: their metadata is dropped after them
        if seq > skip:
            yield _record(seq, element, parent, batch_timestamp, containers)
        if drop_preceding:
            _drop_preceding(parent if parent is not None else element)


def _pending_doi(pending: etree._Element) -> etree._Element | None:
    tag = pending.tag
    return pending.find(tag[: tag.index("}") + 1] + "doi" if tag.startswith("{") else "doi")


def _drop_preceding(element: etree._Element) -> None:
    """Delete the finished siblings before ``element`` and before each of its ancestors."""
    node = element
    while node is not None:
        parent = node.getparent()
        if parent is None:
            return
        while node.getprevious() is not None:
            del parent[0]
        node = parent


def _record(seq: int, element: etree._Element, parent, batch_timestamp: str | None,
            containers: "_Containers") -> DepositRecord:
    content_type = local_name(parent.tag) if parent is not None else "unknown"
    titles, citation = containers.read(parent, content_type) if parent is not None else ((), None)
    if local_name(element.tag) == "doi":  # pending_publication
        return DepositRecord(seq, (element.text or "").strip(), None, batch_timestamp, content_type, titles)
    fields = _first_texts(element, ("doi", "timestamp", "resource"))
    return DepositRecord(
        seq=seq,
        doi=fields.get("doi") or "",
        url=fields.get("resource") or "",
        timestamp=fields.get("timestamp") or batch_timestamp,
        content_type=content_type,
        titles=titles,
        citation=citation,
    )


_BOOK_METADATA = ("book_metadata", "book_series_metadata", "book_set_metadata")
_PROCEEDINGS_METADATA = ("proceedings_metadata", "proceedings_series_metadata")


class _Containers:
    """The title contexts of the body item being read (a <journal>, <book>, <conference>), read once
    from its metadata when its first record ends: streaming drops the metadata after that record.
    The journal issue's volume and number are kept the same way for the articles that follow it."""

    def __init__(self) -> None:
        self.item: etree._Element | None = None
        self.titles: tuple[TitleContext, ...] = ()
        self.volume: str | None = None
        self.issue: str | None = None
        self.issue_read = False

    def observe(self, parent: etree._Element) -> None:
        """Note the body item of a record's element (and its journal issue) before streaming drops them."""
        up = parent.getparent()
        if up is not None and up is self.item:  # the usual case: another record of the same body item
            if self.issue_read or not self.titles or not self.titles[0].issns:
                return
            item = up
        else:
            item = parent
            while up is not None and local_name(up.tag) != "body":
                item, up = up, up.getparent()
        if item is not self.item:
            self.item, self.titles = item, _title_contexts(item)
            self.volume = self.issue = None
            self.issue_read = False
        if not self.issue_read and self.titles and self.titles[0].issns:
            for child in item:  # journal_metadata, journal_issue?, then the articles: stop at the first
                name = local_name(child.tag)
                if name == "journal_issue":
                    volume = _child(child, "journal_volume")
                    self.volume = _plain_text(_child(volume, "volume")) if volume is not None else None
                    self.issue = _plain_text(_child(child, "issue"))
                    self.issue_read = True
                elif name == "journal_article":
                    break

    def read(self, parent: etree._Element, content_type: str) -> tuple[tuple[TitleContext, ...], Citation | None]:
        """The observed record's title contexts, and its citation when it is a journal article."""
        if content_type != "journal_article" or not self.titles or not self.titles[0].issns:
            return self.titles, None
        tag = parent.tag
        ns = tag[: tag.index("}") + 1] if tag[:1] == "{" else ""
        pages_tag, date_tag = ns + "pages", ns + "publication_date"
        first_page = year = None
        for child in parent:  # a handful of children; comparing full tags costs least
            tag = child.tag
            if tag == pages_tag:
                first_page = _plain_text(_named_child(child, ns + "first_page"))
            elif tag == date_tag and year is None:
                year = _plain_text(_named_child(child, ns + "year"))
        return self.titles, Citation(self.volume, self.issue, first_page, year)


def _named_child(element: etree._Element, tag: str) -> etree._Element | None:
    """The first child with this full tag, filtered by lxml in C (``find`` goes through ElementPath)."""
    return next(element.iterchildren(tag), None)


def _child(element: etree._Element, name: str) -> etree._Element | None:
    for child in element:
        if local_name(child.tag) == name:
            return child
    return None


def _children_texts(element: etree._Element, name: str) -> tuple[str, ...]:
    return tuple(text for child in element if local_name(child.tag) == name and (text := _text(child)))


def _plain_text(element: etree._Element | None) -> str | None:
    """The text of a simple element (a volume, a page number), spaces collapsed."""
    if element is None or not element.text:
        return None
    return " ".join(element.text.split()) or None


def _text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    text = " ".join("".join(element.itertext()).split())
    return text or None


def _title_contexts(item: etree._Element) -> tuple[TitleContext, ...]:
    """Title contexts of a body item: the journal; the book or proceedings and the series it is in."""
    kind = local_name(item.tag)
    if kind == "journal":
        metadata = _child(item, "journal_metadata")
        if metadata is None:
            return ()
        return (TitleContext("journal", _text(_child(metadata, "full_title")) or "",
                             _children_texts(metadata, "issn"), ()),)
    names, title_of, kind = (
        (_BOOK_METADATA, _titles_title, "book") if kind == "book" else
        (_PROCEEDINGS_METADATA, lambda m: _text(_child(m, "proceedings_title")), "conference")
        if kind == "conference" else ((), None, kind))
    metadata = next((child for child in item if local_name(child.tag) in names), None)
    if metadata is None:
        return ()
    found = []
    isbns, issns = _children_texts(metadata, "isbn"), _children_texts(metadata, "issn")
    if isbns or issns:
        found.append(TitleContext(kind, title_of(metadata) or "", issns, isbns))
    series = _child(metadata, "series_metadata")
    if series is not None and _children_texts(series, "issn"):
        found.append(TitleContext("series", _titles_title(series) or "", _children_texts(series, "issn"), ()))
    return tuple(found)


def _titles_title(metadata: etree._Element) -> str | None:
    titles = _child(metadata, "titles")
    return _text(_child(titles, "title")) if titles is not None else None


def _first_texts(element: etree._Element, names: tuple[str, ...]) -> dict[str, str]:
    """Stripped text of the first child with each local name, in one pass over the children."""
    found: dict[str, str] = {}
    for child in element:
        name = local_name(child.tag)
        if name in names and name not in found:
            found[name] = (child.text or "").strip()
    return found
