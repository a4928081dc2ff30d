"""Every log the agency writes must validate against its XSD in schemas/log/."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from lxml import etree

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas" / "log"


@lru_cache(maxsize=None)
def _schema(name: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS / name)))


def parse_valid_log(text: str | bytes, schema: str = "doi_batch_diagnostic.xsd") -> etree._Element:
    """Parse a log and assert it is valid; returns the root for further checks."""
    data = text.encode() if isinstance(text, str) else text
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    validator = _schema(schema)
    assert validator.validate(root), f"log does not validate: {validator.error_log}\n{data[:2000]!r}"
    return root


def log_records(root: etree._Element) -> list[tuple[str, str, str]]:
    return [(d.get("status"), d.findtext("doi"), d.findtext("msg")) for d in root.iter("record_diagnostic")]


def log_counts(root: etree._Element) -> dict[str, int]:
    data = root.find("batch_data")
    return {child.tag: int(child.text) for child in data} if data is not None else {}
