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
class DepositRecord:
    seq: int  # 1-based position in the batch
    doi: str
    url: str | None
    timestamp: str | None  # the record's own, else the batch's
    content_type: str  # local name of the element that carries the DOI

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
    for element in elements:
        parent = element.getparent()
        if local_name(element.tag) == "pending_publication":
            element, parent = _pending_doi(element), element
            if element is None:
                continue
        seq += 1
        if seq > skip:
            yield _record(seq, element, parent, batch_timestamp)
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


def _record(seq: int, element: etree._Element, parent, batch_timestamp: str | None) -> DepositRecord:
    content_type = local_name(parent.tag) if parent is not None else "unknown"
    if local_name(element.tag) == "doi":  # pending_publication
        return DepositRecord(seq, (element.text or "").strip(), None, batch_timestamp, content_type)
    fields = _first_texts(element, ("doi", "timestamp", "resource"))
    return DepositRecord(
        seq=seq,
        doi=fields.get("doi") or "",
        url=fields.get("resource") or "",
        timestamp=fields.get("timestamp") or batch_timestamp,
        content_type=content_type,
    )


def _first_texts(element: etree._Element, names: tuple[str, ...]) -> dict[str, str]:
    """Stripped text of the first child with each local name, in one pass over the children."""
    found: dict[str, str] = {}
    for child in element:
        name = local_name(child.tag)
        if name in names and name not in found:
            found[name] = (child.text or "").strip()
    return found
