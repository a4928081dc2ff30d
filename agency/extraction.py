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

from agency.validation import hardened_parser_options


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


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(element: etree._Element, name: str) -> str | None:
    for child in element:
        if isinstance(child.tag, str) and _local(child.tag) == name:
            return (child.text or "").strip()
    return None


def iter_records(path: Path, batch_timestamp: str | None, skip: int = 0) -> Iterator[DepositRecord]:
    """Yield the batch's records in document order, after the first ``skip``."""
    seq = 0
    done_parents: set[str] = set()
    with open(path, "rb") as fh:
        context = etree.iterparse(fh, events=("end",), **hardened_parser_options())
        for _event, element in context:
            tag = element.tag
            if not isinstance(tag, str):
                continue
            name = _local(tag)
            parent = element.getparent()
            record_source = name == "doi_data" or (name == "doi" and parent is not None
                                                   and _local(parent.tag) == "pending_publication")
            if record_source:
                seq += 1
                if seq > skip:
                    yield _record(seq, element, parent, batch_timestamp)
                if parent is not None:
                    done_parents.add(parent.tag)
            elif tag in done_parents or (parent is not None and _local(parent.tag) == "body"):
                # Content items whose DOI was read: drop them and what came before.
                element.clear()
                while element.getprevious() is not None:
                    del parent[0]


def _record(seq: int, element: etree._Element, parent, batch_timestamp: str | None) -> DepositRecord:
    content_type = _local(parent.tag) if parent is not None else "unknown"
    if _local(element.tag) == "doi":  # pending_publication
        return DepositRecord(seq, (element.text or "").strip(), None, batch_timestamp, content_type)
    timestamp = _child_text(element, "timestamp")
    return DepositRecord(
        seq=seq,
        doi=_child_text(element, "doi") or "",
        url=_child_text(element, "resource") or "",
        timestamp=timestamp if timestamp else batch_timestamp,
        content_type=content_type,
    )
