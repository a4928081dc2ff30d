"""Reading DataCite kernel-4 records: hardened parsing, our XSD, and the fields agency relies on.

One record per request (the MDS API takes one ``<resource>`` at a time), so the
whole document is parsed as a tree, bounded by ``MAX_METADATA_BYTES``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from agency.deposit.validation import XmlIssue, hardened_parser_options
from agency.handles.doi_syntax import doi_key, doi_problem

KERNEL4 = "http://datacite.org/schema/kernel-4"
KERNEL3 = "http://datacite.org/schema/kernel-3"
OLDER_KERNELS = ("http://datacite.org/schema/kernel-2.0", "http://datacite.org/schema/kernel-2.1",
                 "http://datacite.org/schema/kernel-2.2", KERNEL3)
MAX_METADATA_BYTES = 1024 * 1024  # DataCite records are a few kB; 1 MB leaves room for long abstracts
MAX_REPORTED_ERRORS = 50
_NS = {"d": KERNEL4}


class MetadataRefused(Exception):
    """A record we cannot take, with what to fix (``issues``) and its HTTP status."""

    def __init__(self, message: str, issues: list[XmlIssue] | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.issues = issues or []
        self.status = status

    def __str__(self) -> str:
        return "\n".join([self.message, *(str(i) for i in self.issues)])


@dataclass(frozen=True)
class Creator:
    name: str
    name_type: str | None
    given_name: str | None
    family_name: str | None


@dataclass(frozen=True)
class RelatedIdentifier:
    value: str
    identifier_type: str
    relation_type: str


@dataclass(frozen=True)
class DataciteRecord:
    """What agency keeps and indexes of one kernel-4 record (``xml`` is the record as received)."""

    doi: str
    xml: bytes
    creators: list[Creator] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    publisher: str = ""
    publication_year: int = 0
    resource_type_general: str = ""
    resource_type: str | None = None
    dates: list[tuple[str, str]] = field(default_factory=list)  # (dateType, value)
    related_identifiers: list[RelatedIdentifier] = field(default_factory=list)
    rights: list[str] = field(default_factory=list)


class Kernel4Schema:
    """Our kernel-4 XSD, compiled once per thread (lxml schema objects are not shared)."""

    def __init__(self, schema_dir: Path) -> None:
        self.path = schema_dir / "datacite" / "kernel-4.xsd"
        self._local = threading.local()

    def schema(self) -> etree.XMLSchema:
        schema = getattr(self._local, "schema", None)
        if schema is None:
            schema = etree.XMLSchema(etree.parse(str(self.path), etree.XMLParser(no_network=True)))
            self._local.schema = schema
        return schema


def _text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    value = " ".join("".join(element.itertext()).split())
    return value or None


def _parse(body: bytes) -> etree._ElementTree:
    if len(body) > MAX_METADATA_BYTES:
        raise MetadataRefused(f"The metadata is {len(body)} bytes, over the limit of {MAX_METADATA_BYTES} bytes "
                              "for one DataCite record; shorten it (long descriptions, many geoLocations).",
                              status=413)
    if not body.strip():
        raise MetadataRefused("The request body is empty: send one DataCite kernel-4 <resource> record.")
    parser = etree.XMLParser(**hardened_parser_options())
    try:
        tree = etree.ElementTree(etree.fromstring(body, parser))
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (exc.lineno, None)
        raise MetadataRefused("The metadata is not well-formed XML; fix it at the place shown.",
                              [XmlIssue(exc.msg or str(exc), line or None, column or None)]) from None
    if tree.docinfo.doctype:
        raise MetadataRefused("A DOCTYPE declaration was found: DTDs and entity declarations are not accepted. "
                              "Remove the <!DOCTYPE ...> line.")
    return tree


def _check_root(root: etree._Element) -> None:
    qname = etree.QName(root)
    namespace = qname.namespace or ""
    if namespace in OLDER_KERNELS:
        raise MetadataRefused(
            f"The record uses {namespace}; this agency takes DataCite kernel-4 records only (DataCite has "
            f"retired the older kernels). Convert it to kernel-4: xmlns=\"{KERNEL4}\" (resourceType with "
            "resourceTypeGeneral is required there).")
    if namespace != KERNEL4:
        raise MetadataRefused(
            f"The root element's namespace {namespace or '(none)'!r} is not DataCite's: the root must be "
            f"<resource xmlns=\"{KERNEL4}\">.")
    if qname.localname != "resource":
        raise MetadataRefused(f"The root element is <{qname.localname}>; a DataCite record's root is <resource>.")


def _schema_issues(tree: etree._ElementTree, schema: etree.XMLSchema) -> list[XmlIssue]:
    issues = []
    for entry in list(schema.error_log)[:MAX_REPORTED_ERRORS]:
        message = entry.message.replace("{" + KERNEL4 + "}", "")
        issues.append(XmlIssue(message, entry.line or None, entry.column or None, _readable_path(tree, entry.path)))
    return issues


def _readable_path(tree: etree._ElementTree, path: str | None) -> str | None:
    """libxml2's ``/*/*[2]`` as ``/resource/creators``."""
    if not path:
        return None
    try:
        found = tree.xpath(path)
    except etree.XPathError:
        return path
    if not found or not isinstance(found[0], etree._Element):
        return path
    names = [etree.QName(e).localname for e in [found[0], *found[0].iterancestors()]]
    return "/" + "/".join(reversed(names))


def read_record(body: bytes, schema: Kernel4Schema, expected_doi: str | None = None) -> DataciteRecord:
    """The validated record in ``body``; ``expected_doi`` (the DOI in the request's path) must match it."""
    tree = _parse(body)
    root = tree.getroot()
    _check_root(root)
    xsd = schema.schema()
    if not xsd.validate(tree):
        raise MetadataRefused("The record does not conform to DataCite kernel-4 (as this agency checks it):",
                              _schema_issues(tree, xsd), status=422)
    doi = _text(root.find("d:identifier", _NS)) or ""
    problem = doi_problem(doi)
    if problem:
        raise MetadataRefused(f"The <identifier> {doi[:100]!r} is not a DOI this agency can register: {problem}",
                              status=422)
    if expected_doi is not None and doi_key(doi) != doi_key(expected_doi):
        raise MetadataRefused(f"The <identifier> in the XML ({doi}) is not the DOI in the URL ({expected_doi}); "
                              "make them the same.")
    return _record_from(root, doi, body)


def _record_from(root: etree._Element, doi: str, body: bytes) -> DataciteRecord:
    creators = [Creator(name=_text(c.find("d:creatorName", _NS)) or "",
                        name_type=c.find("d:creatorName", _NS).get("nameType"),
                        given_name=_text(c.find("d:givenName", _NS)),
                        family_name=_text(c.find("d:familyName", _NS)))
                for c in root.iterfind("d:creators/d:creator", _NS)]
    titles = [_text(t) or "" for t in root.iterfind("d:titles/d:title", _NS)]
    resource_type = root.find("d:resourceType", _NS)
    return DataciteRecord(
        doi=doi, xml=body, creators=creators, titles=titles,
        publisher=_text(root.find("d:publisher", _NS)) or "",
        publication_year=int(_text(root.find("d:publicationYear", _NS)) or 0),
        resource_type_general=resource_type.get("resourceTypeGeneral", ""),
        resource_type=_text(resource_type),
        dates=[(d.get("dateType", ""), _text(d) or "") for d in root.iterfind("d:dates/d:date", _NS)],
        related_identifiers=[RelatedIdentifier(_text(r) or "", r.get("relatedIdentifierType", ""),
                                               r.get("relationType", ""))
                             for r in root.iterfind("d:relatedIdentifiers/d:relatedIdentifier", _NS)],
        rights=[r.get("rightsURI") or _text(r) or "" for r in root.iterfind("d:rightsList/d:rights", _NS)],
    )
