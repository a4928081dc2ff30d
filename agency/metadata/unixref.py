"""A DOI's metadata as deposited, in Crossref's unixref wrapping, read from the batch file that registered it.

``application/vnd.crossref.unixref+xml`` answers with the deposited XML of the
body item holding the DOI (journal, book, conference…), pruned to that DOI's
record: its own content item and the metadata around it (journal_metadata,
journal_issue), not the other records of the batch. The file is streamed one
body item at a time, so a large batch costs one item's memory.
"""

from __future__ import annotations

import copy
from pathlib import Path

from lxml import etree

from agency.deposit.batch_files import submission_path
from agency.deposit.validation import BODY_ITEMS, hardened_parser_options, local_name
from agency.handles.doi_syntax import doi_key


def _target_doi(item: etree._Element, key: str) -> etree._Element | None:
    for element in item.iter():
        if local_name(element.tag) == "doi" and local_name(element.getparent().tag) == "doi_data" \
                and doi_key((element.text or "").strip()) == key:
            return element
    return None


def _has_doi_data(element: etree._Element) -> bool:
    return any(local_name(e.tag) == "doi_data" for e in element.iter())


def _pruned(item: etree._Element, doi_element: etree._Element) -> etree._Element:
    """The body item with only the DOI's record: other records of the same kind, and records after it, dropped."""
    path = []
    node = doi_element
    while node is not None and node is not item:
        path.append(node)
        node = node.getparent()
    keep = set(path)
    for node in path:
        parent = node.getparent()
        if parent is None:
            continue
        after = False
        for sibling in list(parent):
            if sibling is node:
                after = True
                continue
            if not isinstance(sibling.tag, str):
                continue
            same_kind = sibling.tag == node.tag and sibling not in keep
            if same_kind or (after and _has_doi_data(sibling)):
                parent.remove(sibling)
    return item


def deposited_record(batch_dir: Path, storage_path: str, doi: str, owner: str, timestamp: str) -> bytes | None:
    """The unixref document for ``doi`` from its batch file; None when the file or the DOI is not there."""
    path = submission_path(batch_dir, storage_path)
    if not path.is_file():
        return None
    key = doi_key(doi)
    found = None
    try:
        for _event, element in etree.iterparse(str(path), events=("end",), **hardened_parser_options()):
            name = local_name(element.tag)
            if name not in BODY_ITEMS or local_name(element.getparent().tag) != "body":
                continue
            if _target_doi(element, key) is not None:
                found = _prune_copy(element, key)
                break
            element.clear()
    except (etree.XMLSyntaxError, OSError):
        return None
    if found is None:
        return None
    root = etree.Element("doi_records")
    record = etree.SubElement(root, "doi_record", owner=owner, timestamp=timestamp)
    etree.SubElement(record, "crossref").append(found)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _prune_copy(item: etree._Element, key: str) -> etree._Element:
    duplicate = copy.deepcopy(item)
    return _pruned(duplicate, _target_doi(duplicate, key))
