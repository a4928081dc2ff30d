"""Is this file a deposit we accept? Hardened parsing and XSD validation (libxml2).

The schema is chosen by the root element's namespace from ``schemas/crossref/
catalog.json``; ``xsi:schemaLocation`` is never fetched. Every refusal carries
errors a person can act on: line, column, element path and message.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable
from lxml import etree

from agency.deposit.schema_rules import ContributorRoleRules

# Below this size a refused file is re-read as a tree so that every schema
# error gets its line and element path; above it, the streamed errors are given.
DETAILED_ERRORS_MAX_BYTES = 32 * 1024 * 1024
MAX_REPORTED_ERRORS = 200

RESOURCE_NAMESPACE_PREFIX = "http://www.crossref.org/doi_resources_schema/"

MALFORMED = "malformed"  # not well-formed XML: 400
HOSTILE = "hostile"  # DTDs, entities: 400
INVALID = "invalid"  # breaks the schema: 422
UNSUPPORTED = "unsupported"  # a format we do not take (yet): 422
OVER_LIMITS = "over_limits"  # markup too dense to read within the stated memory bounds: 413


@dataclass(frozen=True)
class XmlIssue:
    message: str
    line: int | None = None
    column: int | None = None
    path: str | None = None

    def as_dict(self) -> dict:
        return {"line": self.line, "column": self.column, "path": self.path, "message": self.message}

    def __str__(self) -> str:
        where = []
        if self.line:
            where.append(f"line {self.line}")
        if self.column:
            where.append(f"column {self.column}")
        if self.path:
            where.append(self.path)
        return (", ".join(where) + ": " if where else "") + self.message


@dataclass(frozen=True)
class BatchHead:
    namespace: str
    version: str
    doi_batch_id: str | None
    timestamp: str | None
    depositor_email: str | None

    @property
    def is_resources(self) -> bool:
        """A resource-only deposit (doDOICitUpload): parts of existing DOIs, no new records."""
        return is_resource_namespace(self.namespace)


def is_resource_namespace(namespace: str | None) -> bool:
    return bool(namespace) and namespace.startswith(RESOURCE_NAMESPACE_PREFIX)


@dataclass
class Verdict:
    """The outcome of validating one file: accepted with its head, or refused."""

    head: BatchHead | None = None
    kind: str | None = None
    issues: list[XmlIssue] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.kind is None

    @property
    def summary(self) -> str:
        titles = {
            MALFORMED: "The file is not well-formed XML",
            HOSTILE: "The file uses XML features that are refused for safety",
            INVALID: "The file does not conform to the deposit schema",
            UNSUPPORTED: "The file is not a deposit format this agency takes",
            OVER_LIMITS: "The file's markup exceeds a limit this agency sets to bound memory",
        }
        return titles.get(self.kind or "", "Accepted")


class RefusedFile(Exception):
    def __init__(self, kind: str, issues: list[XmlIssue]):
        super().__init__(issues[0].message if issues else kind)
        self.kind = kind
        self.issues = issues


def hardened_parser_options() -> dict:
    """No DTD loading, no entity expansion, no network, libxml2's size guards on."""
    return dict(resolve_entities=False, load_dtd=False, no_network=True, huge_tree=False, dtd_validation=False)


class _LocalNames(dict):
    """Tag → local name ("{ns}title" → "title"), computed once per distinct tag.

    Bounded: schemas leave extension content open, so a hostile file may carry any
    number of distinct tags; past the limit the cache starts again.
    """

    LIMIT = 4096

    def __missing__(self, tag) -> str:
        name = tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""  # comments and PIs have no name
        if len(self) >= self.LIMIT:
            self.clear()
        self[tag] = name
        return name


LOCAL_NAMES = _LocalNames()


def local_name(tag) -> str:
    """"{ns}title" → "title" ("" for comments and processing instructions), cached per tag."""
    return LOCAL_NAMES[tag]


def hardened_parser() -> etree.XMLParser:
    return etree.XMLParser(**hardened_parser_options())


# The children of <body> in our deposit schemas (schemas/crossref/).
BODY_ITEMS = ("journal", "book", "conference", "sa_component", "dissertation", "report-paper", "standard",
              "database", "peer_review", "posted_content", "pending_publication", "grant",
              # resource-only deposits (schemas/crossref/resources-core.xsd)
              *("doi_resources", "doi_citations", "fundref_data", "lic_ref_data", "crossmark_data",
                "doi_relations", "clinicaltrial_data"))
BodyItemSink = Callable[[etree._Element, "BatchHead"], None]


class SchemaCatalog:
    """Namespace → compiled XMLSchema, compiled once per thread (lxml objects are not shared)."""

    def __init__(self, schema_dir: Path) -> None:
        self.crossref_dir = schema_dir / "crossref"
        catalog_file = self.crossref_dir / "catalog.json"
        self.entries: dict[str, str] = json.loads(catalog_file.read_text()) if catalog_file.exists() else {}
        resources_file = self.crossref_dir / "resources-catalog.json"
        if resources_file.exists():  # resource-only deposit schemas, kept apart from the deposit schemas'
            self.entries.update(json.loads(resources_file.read_text()))
        self._local = threading.local()

    def knows(self, namespace: str) -> bool:
        return namespace in self.entries

    def schema_for(self, namespace: str) -> etree.XMLSchema:
        cache = self._local.__dict__.setdefault("schemas", {})
        if namespace not in cache:
            path = self.crossref_dir / self.entries[namespace]
            cache[namespace] = etree.XMLSchema(etree.parse(str(path), etree.XMLParser(no_network=True)))
        return cache[namespace]

    def supported_namespaces(self, resources: bool = False) -> list[str]:
        return sorted(ns for ns in self.entries if is_resource_namespace(ns) == resources)


def _issue_from_syntax_error(exc: etree.XMLSyntaxError) -> XmlIssue:
    line, column = (exc.position if exc.position else (exc.lineno, None))
    return XmlIssue(message=exc.msg or str(exc), line=line or None, column=column or None)


def _root_namespace(path: Path) -> tuple[str, str]:
    """(namespace, local name) of the root element; refuses DTDs on the way."""
    with open(path, "rb") as fh:
        context = etree.iterparse(fh, events=("start",), **hardened_parser_options())
        try:
            for _event, element in context:
                if element.getroottree().docinfo.doctype:
                    raise RefusedFile(
                        HOSTILE,
                        [XmlIssue("A DOCTYPE declaration was found: DTDs and entity declarations are not "
                                  "accepted in deposits. Remove the <!DOCTYPE ...> line.", line=1)],
                    )
                qname = etree.QName(element)
                return qname.namespace or "", qname.localname
        except etree.XMLSyntaxError as exc:
            raise RefusedFile(MALFORMED, [_issue_from_syntax_error(exc)]) from None
    raise RefusedFile(MALFORMED, [XmlIssue("The file is empty: no root element")])


def _check_well_formed(path: Path) -> None:
    try:
        with open(path, "rb") as fh:
            for _event, element in etree.iterparse(fh, events=("end",), **hardened_parser_options()):
                element.clear()
    except etree.XMLSyntaxError as exc:
        raise RefusedFile(MALFORMED, [_issue_from_syntax_error(exc)]) from None


def _text(element: etree._Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    return element.text.strip() or None


def _head_from(element: etree._Element, namespace: str) -> BatchHead:
    ns = {"c": namespace}
    head = element.find("c:head", ns)
    get = (lambda p: _text(head.find(p, ns))) if head is not None else (lambda p: None)
    return BatchHead(
        namespace=namespace,
        version=element.get("version") or namespace.rsplit("/", 1)[-1],
        doi_batch_id=get("c:doi_batch_id"),
        timestamp=get("c:timestamp"),
        depositor_email=get("c:depositor/c:email_address"),
    )


def _schema_issues(error_log) -> list[XmlIssue]:
    issues = []
    for entry in list(error_log)[:MAX_REPORTED_ERRORS]:
        issues.append(XmlIssue(message=entry.message, line=entry.line or None,
                               column=entry.column or None, path=entry.path or None))
    return issues


def _with_readable_path(tree: etree._ElementTree, issue: XmlIssue) -> XmlIssue:
    """Replace libxml2's ``/*/*[2]`` paths with local names: ``/doi_batch/body/journal[1]``."""
    if not issue.path:
        return issue
    try:
        found = tree.xpath(issue.path)
    except etree.XPathError:
        return issue
    if not found or not isinstance(found[0], etree._Element):
        return issue
    steps = []
    for element in [found[0], *found[0].iterancestors()]:
        name = etree.QName(element).localname
        parent = element.getparent()
        if parent is not None and len([c for c in parent if c.tag == element.tag]) > 1:
            position = [c for c in parent if c.tag == element.tag].index(element) + 1
            name = f"{name}[{position}]"
        steps.append(name)
    return XmlIssue(issue.message, issue.line, issue.column, "/" + "/".join(reversed(steps)))


@dataclass(frozen=True)
class MarkupLimits:
    """Bounds on markup inside one element, so that memory is bounded by limits, not by the input.

    libxml2 builds each body item as a tree; one element with hundreds of thousands of
    attributes or millions of children costs hundreds of MB for a few MB of input. Text
    is bounded by libxml2 itself (10,000,000 bytes per text node, ``huge_tree`` off).
    Counting every element in Python would slow every deposit down 2-3 times, so the
    exact count runs only on files with a dense window: more than ``dense_fraction``
    markup characters ('<' or '=') per byte in some ``window_bytes`` of the file. Real
    deposits stay under 0.05; a denser stretch shorter than a window holds too few
    nodes to matter (at most window_bytes / 2 of them).
    """

    max_attributes_per_element: int = 256
    max_children_per_element: int = 100_000
    # The streaming validation holds one body item (a <journal> with all its articles) as a tree:
    # about 9 bytes of memory per byte of ordinary markup (measured), so this bounds it near 75 MB.
    max_body_item_bytes: int = 8 * 1024 * 1024
    dense_fraction: float = 0.1
    window_bytes: int = 1024 * 1024


# A stretch between two '<' longer than this may hold a start tag with very many attributes
# ('<' cannot occur inside an attribute value): such stretches are counted before libxml2,
# which would build every attribute of the tag before lxml could look at it.
LONG_STRETCH_BYTES = 64 * 1024
_LONG_STRETCH = re.compile(rb"<[^<]{%d,}" % LONG_STRETCH_BYTES)
_ATTRIBUTE = re.compile(rb"""\s[^\s<>="']+\s*=\s*(?:"[^"]*"|'[^']*')""")


def _scan_raw_markup(path: Path, limits: MarkupLimits) -> bool:
    """One pass over the bytes at C speed: refuse a start tag over the attribute limit before
    libxml2 builds it; say whether some window is dense enough to need the exact count."""
    dense, carry = False, b""
    with open(path, "rb") as fh:
        while chunk := fh.read(limits.window_bytes):
            threshold = limits.dense_fraction * len(chunk)
            whole_window = len(chunk) == limits.window_bytes or fh.tell() == len(chunk)  # not a file's short tail
            if not dense and whole_window and (chunk.count(b"<") > threshold or chunk.count(b"=") > threshold):
                dense = True
            text = carry + chunk
            last_open = text.rfind(b"<")
            for stretch in _LONG_STRETCH.finditer(text, 0, last_open if last_open > 0 else len(text)):
                _refuse_many_attributes(stretch.group(), limits)
            # The open stretch at the end continues in the next chunk.
            carry = text[last_open:] if last_open >= 0 else text
            if len(carry) > LONG_STRETCH_BYTES and carry.count(b"=") > limits.max_attributes_per_element:
                _refuse_many_attributes(carry, limits)
            if len(carry) > 2 * limits.window_bytes:  # a long text with few attributes: keep memory flat
                carry = carry[:LONG_STRETCH_BYTES]
    if carry:
        _refuse_many_attributes(carry, limits)
    return dense


def _refuse_many_attributes(stretch: bytes, limits: MarkupLimits) -> None:
    found = 0
    for found, _match in enumerate(_ATTRIBUTE.finditer(stretch), start=1):
        if found > limits.max_attributes_per_element:
            name = stretch[1:].split(None, 1)[0][:64].decode("utf-8", "replace") if len(stretch) > 1 else "?"
            raise RefusedFile(OVER_LIMITS, [XmlIssue(
                f"Element <{name}> has more than {limits.max_attributes_per_element} attributes, the most "
                "accepted on one element (AGENCY_MAX_ATTRIBUTES_PER_ELEMENT).")])


def check_markup_limits(path: Path, limits: MarkupLimits) -> None:
    """Refuse (OVER_LIMITS) a file with an element over the attribute or children limit.

    Streams with flat memory: each element is cleared when it ends and only a count per
    open element is kept."""
    if not _scan_raw_markup(path, limits):
        return
    open_children: list[int] = [0]
    try:
        with open(path, "rb") as fh:
            for event, element in etree.iterparse(fh, events=("start", "end"), **hardened_parser_options()):
                if event == "end":
                    open_children.pop()
                    element.clear()
                    parent = element.getparent()
                    if parent is not None:
                        while element.getprevious() is not None:
                            del parent[0]
                    continue
                name = local_name(element.tag)
                if len(element.attrib) > limits.max_attributes_per_element:
                    raise RefusedFile(OVER_LIMITS, [XmlIssue(
                        f"Element <{name}> has {len(element.attrib)} attributes; at most "
                        f"{limits.max_attributes_per_element} are accepted on one element "
                        "(AGENCY_MAX_ATTRIBUTES_PER_ELEMENT).", line=element.sourceline)])
                open_children[-1] += 1
                if open_children[-1] > limits.max_children_per_element:
                    parent = element.getparent()
                    raise RefusedFile(OVER_LIMITS, [XmlIssue(
                        f"Element <{local_name(parent.tag) if parent is not None else '?'}> has more than "
                        f"{limits.max_children_per_element} child elements; that is the most accepted in one "
                        "element (AGENCY_MAX_CHILDREN_PER_ELEMENT).", line=element.sourceline)])
                open_children.append(0)
    except etree.XMLSyntaxError:
        return  # not well-formed: the validation proper says where


class _BodyItemBytes:
    """The deposit file as the streaming parser reads it, counting bytes since the last body item
    ended: past ``limit`` the read ends the file early, and ``over`` holds the refusal to raise.

    libxml2 builds each body item whole before Python sees it, so this is where its size is
    bounded; the counter is reset by the caller at each item's end."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        self._raw, self._limit = raw, limit
        self._since_item = self._offset = 0
        self.over: RefusedFile | None = None

    def read(self, size: int = -1) -> bytes:
        if self.over is not None:
            return b""
        data = self._raw.read(size)
        self._since_item += len(data)
        self._offset += len(data)
        if self._since_item > self._limit:
            self.over = RefusedFile(OVER_LIMITS, [XmlIssue(
                f"One element inside <body> (a <journal>, <book>, <conference>... with everything in it) is "
                f"larger than {self._limit} bytes, the most accepted in one body item "
                f"(AGENCY_MAX_BODY_ITEM_BYTES); it was still open at byte {self._offset} of the file. "
                "Split it into several elements of the same kind (one per issue, say), or several files.")])
            return b""
        return data

    def item_ended(self) -> None:
        self._since_item = 0


class DepositValidator:
    """Validates deposit files against our schemas, streaming when files are large."""

    def __init__(self, catalog: SchemaCatalog, limits: MarkupLimits | None = None) -> None:
        self.catalog = catalog
        self.limits = limits or MarkupLimits()

    def check(self, path: Path, body_items: BodyItemSink | None = None) -> Verdict:
        """Validate ``path`` in one streaming pass; ``body_items``, if given, sees each child
        of ``<body>`` (with the head) before it is dropped, so a caller can take what it
        needs from the same pass."""
        try:
            return Verdict(head=self._check(path, body_items))
        except RefusedFile as refusal:
            return Verdict(kind=refusal.kind, issues=refusal.issues)

    def _check(self, path: Path, body_items: BodyItemSink | None) -> BatchHead:
        namespace, localname = _root_namespace(path)
        try:
            self._check_format(namespace, localname)
        except RefusedFile:
            _check_well_formed(path)  # a parse error is the more useful thing to report
            raise
        check_markup_limits(path, self.limits)
        schema = self.catalog.schema_for(namespace)
        rules = ContributorRoleRules.for_namespace(namespace)  # XSD 1.1 rules libxml2 cannot check
        try:
            # Streaming is the fast path and keeps memory flat whatever the size.
            head = self._check_stream(path, schema, namespace, rules.watching(body_items) if rules else body_items)
        except RefusedFile as refusal:
            if refusal.kind == INVALID and path.stat().st_size <= DETAILED_ERRORS_MAX_BYTES:
                self._check_tree(path, schema)  # read it whole again: every error with line and path
            raise
        if rules is not None and rules.breaks:
            raise RefusedFile(INVALID, [XmlIssue(*rule_break) for rule_break in rules.breaks])
        return head

    def _check_format(self, namespace: str, localname: str) -> None:
        if is_resource_namespace(namespace) and not self.catalog.knows(namespace):
            known = ", ".join(v.rsplit("/", 1)[-1] for v in self.catalog.supported_namespaces(resources=True))
            raise RefusedFile(UNSUPPORTED, [XmlIssue(
                f"The resource-only deposit namespace {namespace!r} is not one this agency knows; nothing was "
                f"processed. Use {RESOURCE_NAMESPACE_PREFIX}<version> with one of the versions {known}.",
                line=1, path=f"/{localname}")])
        if not self.catalog.knows(namespace):
            supported = ", ".join(self.catalog.supported_namespaces()[-3:])
            raise RefusedFile(UNSUPPORTED if namespace else INVALID, [XmlIssue(
                f"The root element's namespace {namespace or '(none)'!r} is not a deposit schema this agency "
                f"knows. Use a Crossref deposit namespace, e.g. {supported}.", line=1, path=f"/{localname}")])
        if localname != "doi_batch":
            raise RefusedFile(INVALID, [XmlIssue(
                f"The root element is <{localname}>; a deposit's root element must be <doi_batch> "
                "with <head> and <body>.", line=1, path=f"/{localname}")])

    def _check_tree(self, path: Path, schema: etree.XMLSchema) -> None:
        """Raise the refusal with every schema error, each with its line and a readable path."""
        parser = hardened_parser()
        try:
            with open(path, "rb") as fh:
                tree = etree.parse(fh, parser)
        except etree.XMLSyntaxError as exc:
            raise RefusedFile(MALFORMED, [_issue_from_syntax_error(exc)]) from None
        except OSError as exc:  # libxml2 reports encoding errors this way
            issues = [XmlIssue(e.message, e.line or None, e.column or None) for e in parser.error_log]
            raise RefusedFile(MALFORMED, issues[:1] or [XmlIssue(str(exc).split(": ", 1)[-1])]) from None
        if not schema.validate(tree):
            raise RefusedFile(INVALID, [_with_readable_path(tree, i) for i in _schema_issues(schema.error_log)])

    def _check_stream(self, path: Path, schema: etree.XMLSchema, namespace: str,
                      body_items: BodyItemSink | None) -> BatchHead:
        head: BatchHead | None = None
        ns_head, ns_body = f"{{{namespace}}}head", f"{{{namespace}}}body"
        ns_root = f"{{{namespace}}}doi_batch"
        tags = [ns_root, ns_head, *(f"{{{namespace}}}{name}" for name in BODY_ITEMS)]
        complete, fh = False, None
        etree.clear_error_log()  # the thread's log would otherwise leak earlier files' errors in here
        try:
            with open(path, "rb") as raw:
                fh = _BodyItemBytes(raw, self.limits.max_body_item_bytes)
                # libxml2 validates every element; only head and body items reach Python.
                for _event, element in etree.iterparse(fh, events=("end",), tag=tags, schema=schema,
                                                       **hardened_parser_options()):
                    parent = element.getparent()
                    if element.tag == ns_root and parent is None:
                        complete = True
                    elif element.tag == ns_head:
                        head = _head_from(parent, namespace)
                        fh.item_ended()
                    elif parent is not None and parent.tag == ns_body:
                        if body_items is not None and head is not None:
                            body_items(element, head)
                        element.clear()  # keep memory flat
                        while element.getprevious() is not None:
                            del parent[0]
                        fh.item_ended()
            if fh.over is not None:
                raise fh.over
        except etree.XMLSyntaxError as exc:
            if fh is not None and fh.over is not None:  # the read was cut short at the limit
                raise fh.over from None
            _check_well_formed(path)  # raises MALFORMED when the parser, not the schema, failed
            schema_entries = [e for e in exc.error_log if e.domain_name == "SCHEMASV"]
            issues = list(dict.fromkeys(_schema_issues(schema_entries))) or [XmlIssue(str(exc))]
            issues.append(XmlIssue("(This file is too large for line numbers in schema errors; "
                                   "validate it locally for positions.)"))
            raise RefusedFile(INVALID, issues) from None
        if not complete:
            # lxml's validating iterparse stops quietly at a truncated end: say where it broke.
            _check_well_formed(path)
            raise RefusedFile(MALFORMED, [XmlIssue("The file ends before </doi_batch>: it is truncated")])
        if head is None:
            raise RefusedFile(INVALID, [XmlIssue("The batch has no <head>")])
        return head
