"""Metadata formats for content negotiation beyond CSL JSON and BibTeX, and the negotiation itself.

Everything here is framework-free and works from a ``resolver.CitationRecord``:
RIS, formatted citations (citeproc-py with a CSL style shipped in
``templates/csl/``), RDF as Turtle or RDF/XML (Dublin Core terms and schema.org).
``negotiate`` reads an Accept header as the DOI proxy does: the highest quality
wins and ties go to the type listed first.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from lxml import etree

from agency.handles.resolver import CitationRecord, csl_json, csl_type, page_range

HTML = "text/html"
CSL_JSON = "application/vnd.citationstyles.csl+json"
CITEPROC_JSON = "application/citeproc+json"
BIBTEX = "application/x-bibtex"
RIS = "application/x-research-info-systems"
BIBLIOGRAPHY = "text/x-bibliography"
UNIXREF = "application/vnd.crossref.unixref+xml"
RDF_XML = "application/rdf+xml"
TURTLE = "text/turtle"
DATACITE_XML = "application/vnd.datacite.datacite+xml"  # the kernel-4 record of a DOI registered through MDS
METADATA_TYPES = (CSL_JSON, CITEPROC_JSON, BIBTEX, RIS, BIBLIOGRAPHY, UNIXREF, RDF_XML, TURTLE, DATACITE_XML)
REDIRECT_TYPES = (HTML, "application/xhtml+xml", "*/*", "text/*")
MAX_ACCEPT_ENTRIES = 64
DEFAULT_STYLE, DEFAULT_LOCALE = "apa", "en-US"


# -- negotiation ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Choice:
    """What to answer: a metadata type (with its parameters, e.g. style and locale), or None for the redirect."""

    media_type: str | None
    params: dict = field(default_factory=dict)


REDIRECT = Choice(None)


def _entries(accept: str):
    """(position, media type, parameters, quality) for each entry of an Accept header (bounded)."""
    for position, part in enumerate(accept.split(",")[:MAX_ACCEPT_ENTRIES]):
        pieces = [p.strip() for p in part.split(";")]
        media_type = pieces[0].lower()
        if not media_type:
            continue
        params, quality = {}, 1.0
        for piece in pieces[1:]:
            name, _, value = piece.partition("=")
            name, value = name.strip().lower(), value.strip().strip('"')
            if name == "q":
                try:
                    quality = max(0.0, min(float(value), 1.0))
                except ValueError:
                    quality = 0.0
            elif name:
                params[name] = value
        yield position, media_type, params, quality


def negotiate(accept: str | None) -> Choice:
    """The representation an Accept header asks for: highest q, ties to the first listed; others redirect."""
    if not accept:
        return REDIRECT
    best = None
    for position, media_type, params, quality in _entries(accept):
        if quality <= 0 or (media_type not in METADATA_TYPES and media_type not in REDIRECT_TYPES):
            continue
        if best is None or quality > best[0]:
            best = (quality, position, media_type, params)
    if best is None or best[2] in REDIRECT_TYPES:
        return REDIRECT
    return Choice(best[2], best[3])


# -- RIS --------------------------------------------------------------------------------------
_RIS_TYPES = {"article-journal": "JOUR", "paper-conference": "CPAPER", "chapter": "CHAP", "entry": "CHAP",
              "book": "BOOK", "thesis": "THES", "report": "RPRT", "dataset": "DATA", "standard": "STAND",
              "periodical": "JFULL"}


def _ris_line(tag: str, value: str) -> str:
    return f"{tag}  - {' '.join(value.split())}\r\n"


def ris(record: CitationRecord) -> str:
    """The record as one RIS entry (TY first, ER last), CRLF line ends as the format asks."""
    lines = [_ris_line("TY", _RIS_TYPES.get(csl_type(record), "GEN"))]
    for tag, value in (("DO", record.doi), ("UR", record.url), ("TI", record.title), ("T2", record.container_title),
                       ("J2", record.container_abbrev), ("T3", record.series_title)):
        if value:
            lines.append(_ris_line(tag, value))
    for person in record.people:
        tag = {"author": "AU", "editor": "ED", "translator": "A4"}.get(person.role)
        if tag and person.family:
            name = person.family if person.is_organization or not person.given else f"{person.family}, {person.given}"
            lines.append(_ris_line(tag, name))
    for tag, value in (("PY", str(record.year) if record.year else None), ("VL", record.volume),
                       ("IS", record.issue), ("SP", record.first_page), ("EP", record.last_page),
                       ("ET", record.edition), ("PB", record.publisher)):
        if value:
            lines.append(_ris_line(tag, value))
    lines.extend(_ris_line("SN", value) for value in (*record.issns, *record.isbns))
    lines.append("ER  - \r\n")
    return "".join(lines)


# -- formatted citations ---------------------------------------------------------------------------
class UnknownStyle(ValueError):
    """A citation style this agency does not ship."""


def style_files(template_dir: Path) -> dict[str, Path]:
    """The CSL styles shipped in ``templates/csl/`` by name (``apa`` -> apa.csl)."""
    return {p.stem: p for p in sorted((template_dir / "csl").glob("*.csl"))}


@lru_cache(maxsize=16)
def _style(path: str, locale: str):
    from citeproc import CitationStylesStyle

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # citeproc-py warns about CSL features it renders approximately
        return CitationStylesStyle(path, locale=locale, validate=False)


@lru_cache(maxsize=1)
def _locales() -> frozenset[str]:
    import citeproc

    folder = Path(citeproc.__file__).parent / "data" / "locales"
    return frozenset(p.stem.removeprefix("locales-") for p in folder.glob("locales-*.xml"))


def citation_locale(wanted: str | None) -> str:
    """The locale asked for when citeproc-py has it (en_us and en-US alike), else en-US."""
    if not wanted:
        return DEFAULT_LOCALE
    parts = wanted.replace("_", "-").split("-")
    normal = parts[0].lower() + ("-" + parts[1].upper() if len(parts) > 1 else "")
    if normal in _locales():
        return normal
    same_language = sorted(loc for loc in _locales() if loc.split("-")[0] == parts[0].lower())
    return same_language[0] if same_language else DEFAULT_LOCALE


def formatted_citation(record: CitationRecord, template_dir: Path, style: str | None, locale: str | None) -> str:
    """The record formatted in a shipped CSL style as plain text, one line (raises UnknownStyle)."""
    from citeproc import Citation, CitationItem, CitationStylesBibliography, formatter
    from citeproc.source.json import CiteProcJSON

    styles = style_files(template_dir)
    name = (style or DEFAULT_STYLE).lower()
    if name not in styles:
        raise UnknownStyle(f"style={name!r} is not offered here; styles: {', '.join(styles)}")
    item = csl_json(record)
    item["id"] = "item"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bibliography = CitationStylesBibliography(_style(str(styles[name]), citation_locale(locale)),
                                                  CiteProcJSON([item]), formatter.plain)
        bibliography.register(Citation([CitationItem("item")]))
        entries = [str(entry) for entry in bibliography.bibliography()]
    return " ".join(" ".join(entries).split()) + "\n"


# -- RDF (Dublin Core terms, schema.org) ------------------------------------------------------------
DCTERMS, SCHEMA, RDF_NS = "http://purl.org/dc/terms/", "http://schema.org/", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_SCHEMA_TYPES = {"article-journal": "ScholarlyArticle", "paper-conference": "ScholarlyArticle", "book": "Book",
                 "chapter": "Chapter", "thesis": "Thesis", "report": "Report", "dataset": "Dataset",
                 "periodical": "Periodical"}


def doi_uri(doi: str) -> str:
    return "https://doi.org/" + re.sub(r"[^A-Za-z0-9\-._~:/;()\[\]@!$&'*+,=]", lambda m: "".join(
        f"%{b:02X}" for b in m.group().encode()), doi)


def _statements(record: CitationRecord) -> list[tuple[str, str, object]]:
    """(namespace, local name, value): str literals, ('uri', …) references, ('person', Person) nodes."""
    out: list[tuple[str, str, object]] = [(DCTERMS, "identifier", record.doi)]
    for ns, name, value in ((DCTERMS, "title", record.title), (SCHEMA, "name", record.title),
                            (DCTERMS, "date", str(record.year) if record.year else None),
                            (DCTERMS, "publisher", record.publisher), (SCHEMA, "volumeNumber", record.volume),
                            (SCHEMA, "issueNumber", record.issue), (SCHEMA, "pagination", page_range(record)),
                            (SCHEMA, "isPartOf", record.container_title)):
        if value:
            out.append((ns, name, value))
    if record.url:
        out.append((SCHEMA, "url", ("uri", record.url)))
    for person in record.people:
        if person.role == "author" and person.family:
            out.append((DCTERMS, "creator", ("person", person)))
    out.extend((SCHEMA, "issn", value) for value in record.issns)
    out.extend((SCHEMA, "isbn", value) for value in record.isbns)
    return out


def _turtle_text(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def _turtle_uri(uri: str) -> str:
    return "<" + re.sub(r'[<>"{}|^`\\\x00-\x20]', lambda m: f"%{ord(m.group()):02X}", uri) + ">"


def turtle(record: CitationRecord) -> str:
    prefixes = {DCTERMS: "dcterms", SCHEMA: "schema"}
    lines = [f"@prefix dcterms: <{DCTERMS}> .", f"@prefix schema: <{SCHEMA}> .", "",
             f"{_turtle_uri(doi_uri(record.doi))} a schema:{_SCHEMA_TYPES.get(csl_type(record), 'CreativeWork')}"]
    for ns, name, value in _statements(record):
        if isinstance(value, tuple) and value[0] == "uri":
            shown = _turtle_uri(value[1])
        elif isinstance(value, tuple):
            person = value[1]
            kind = "Organization" if person.is_organization else "Person"
            parts = [f"a schema:{kind}", f"schema:name {_turtle_text(_full_name(person))}"]
            if not person.is_organization:
                parts.append(f"schema:familyName {_turtle_text(person.family or '')}")
                if person.given:
                    parts.append(f"schema:givenName {_turtle_text(person.given)}")
            shown = "[ " + " ; ".join(parts) + " ]"
        else:
            shown = _turtle_text(value)
        lines.append(f"    ; {prefixes[ns]}:{name} {shown}")
    return "\n".join(lines) + " .\n"


def _full_name(person) -> str:
    return " ".join(p for p in (person.given, person.family) if p) if not person.is_organization else person.family


def rdf_xml(record: CitationRecord) -> bytes:
    nsmap = {"rdf": RDF_NS, "dcterms": DCTERMS, "schema": SCHEMA}
    root = etree.Element(f"{{{RDF_NS}}}RDF", nsmap=nsmap)
    node = etree.SubElement(root, f"{{{RDF_NS}}}Description", {f"{{{RDF_NS}}}about": doi_uri(record.doi)})
    etree.SubElement(node, f"{{{RDF_NS}}}type",
                     {f"{{{RDF_NS}}}resource": SCHEMA + _SCHEMA_TYPES.get(csl_type(record), "CreativeWork")})
    for ns, name, value in _statements(record):
        element = etree.SubElement(node, f"{{{ns}}}{name}")
        if isinstance(value, tuple) and value[0] == "uri":
            element.set(f"{{{RDF_NS}}}resource", value[1])
        elif isinstance(value, tuple):
            person = value[1]
            element.set(f"{{{RDF_NS}}}parseType", "Resource")
            kind = "Organization" if person.is_organization else "Person"
            etree.SubElement(element, f"{{{RDF_NS}}}type", {f"{{{RDF_NS}}}resource": SCHEMA + kind})
            etree.SubElement(element, f"{{{SCHEMA}}}name").text = _xml_text(_full_name(person))
            if not person.is_organization:
                etree.SubElement(element, f"{{{SCHEMA}}}familyName").text = _xml_text(person.family or "")
                if person.given:
                    etree.SubElement(element, f"{{{SCHEMA}}}givenName").text = _xml_text(person.given)
        else:
            element.text = _xml_text(value)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _xml_text(value: str) -> str:
    """Text XML 1.0 can carry (control characters from registrants' files dropped)."""
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", value)
