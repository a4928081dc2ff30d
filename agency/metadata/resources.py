"""Resource-only deposits in the metadata database: each body item kept as the DOI's newest part of its kind.

The handle record took the deposit's URLs when the batch ran; the rest of what a
resource-only deposit carries (references, funding, licences, relations,
Crossmark, clinical trials, collections) reaches the index here, at the load
after it, read from the batch file like any deposit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from lxml import etree
from sqlalchemy import delete, tuple_
from sqlalchemy.orm import Session

from agency.deposit.resources import RESOURCE_ITEMS
from agency.deposit.validation import hardened_parser_options, is_resource_namespace, local_name
from agency.handles.doi_syntax import doi_key
from agency.metadata.extraction import BatchHead
from agency.models import MetadataResource

MAX_PART_BYTES = 1024 * 1024  # a part larger than this is not kept (its deposit log still says what happened)


@dataclass(frozen=True, slots=True)
class ResourcePart:
    seq: int
    doi: str
    part: str
    xml: str


def is_resource_batch(path: Path) -> bool:
    """Does the batch file's root element have a doi_resources namespace? Reads only its first tag."""
    with open(path, "rb") as fh:
        for _event, element in etree.iterparse(fh, events=("start",), **hardened_parser_options()):
            return is_resource_namespace(etree.QName(element).namespace)
    return False


class ResourcePartReader:
    """The parts of a resource-only batch, in the deposit's record order; ``head`` once read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.head = BatchHead()
        self.record_count = 0

    def __iter__(self) -> Iterator[ResourcePart]:
        tags = tuple("{*}" + n for n in (*RESOURCE_ITEMS, "head"))
        seq = 0
        with open(self.path, "rb") as fh:
            for _event, element in etree.iterparse(fh, events=("end",), tag=tags, **hardened_parser_options()):
                parent = element.getparent()
                if local_name(element.tag) == "head":
                    self.head = _head(element)
                    continue
                if parent is None or local_name(parent.tag) != "body":
                    continue
                seq += 1
                doi = next(((c.text or "").strip() for c in element if local_name(c.tag) == "doi"), "")
                yield ResourcePart(seq, doi, local_name(element.tag),
                                   etree.tostring(element, encoding="unicode", with_tail=False))
                element.clear()
                while element.getprevious() is not None:
                    del parent[0]
        self.record_count = seq


def _head(element) -> BatchHead:
    def text(*names: str) -> str | None:
        node = element
        for name in names:
            node = next((c for c in node if local_name(c.tag) == name), None)
            if node is None:
                return None
        return (node.text or "").strip() or None

    return BatchHead(batch_id=text("doi_batch_id"), timestamp=text("timestamp"),
                     depositor_name=text("depositor", "depositor_name") or text("depositor", "name"),
                     email=text("depositor", "email_address"), registrant=text("registrant"))


def write_parts(session: Session, parts: Sequence[ResourcePart], submission_id: int | None, folder: str) -> None:
    """Replace each DOI's part of that kind by the deposited one (the later record of a batch wins)."""
    newest = {(doi_key(p.doi), p.part): p for p in parts if len(p.xml) <= MAX_PART_BYTES}
    if not newest:
        return
    session.execute(delete(MetadataResource).where(
        tuple_(MetadataResource.doi_key, MetadataResource.part).in_(list(newest))))
    session.add_all(MetadataResource(doi_key=key, part=part, doi=p.doi, xml=p.xml, submission_id=submission_id,
                                     batch_folder=folder) for (key, part), p in newest.items())
