"""Resource-only deposits (``doi_resources`` namespaces, ``operation=doDOICitUpload``).

They add or replace parts of DOIs that are already registered: collections of
URLs (multiple resolution, crawling, text and data mining...), references,
funding, licences, relations, Crossmark and clinical-trial data. One record per
child of ``<body>``, numbered in document order like a full deposit's records.

Only a DOI that exists, that the depositing account owns, and that is neither
an alias nor withdrawn takes resources. The handle record takes collection
URLs at once (a ``10320/loc`` value, the Handle System's multiple-resolution
value), and a collection's ``multi-resolution="lock|unlock"`` is kept on that
value as its ``multi-resolution`` attribute (a bare ``<collection
multi-resolution="unlock"/>`` changes the state and keeps the URLs); the rest
waits in the batch file for the metadata load, which reads the files as it does
for full deposits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from lxml import etree
from sqlalchemy.orm import Session

from agency.accounts import Registrant
from agency.deposit.validation import hardened_parser_options, local_name
from agency.handles.doi_syntax import doi_key, doi_problem, url_problem
from agency.handles.store import FAILURE, SUCCESS, RecordDiagnostic, handle_states, write_locations

RESOURCE_ITEMS = ("doi_resources", "doi_citations", "fundref_data", "lic_ref_data", "crossmark_data",
                  "doi_relations", "clinicaltrial_data")
SUCCESS_MESSAGES = {
    "fundref_data": "FundRef Resources processed successfully",
    "lic_ref_data": "License-ref Resources processed successfully",
}
DEFAULT_SUCCESS = "Resources processed successfully"
# Collections whose URLs take part in resolution (the rest are for crawlers and text miners, kept as metadata).
RESOLUTION_PROPERTIES = ("list-based", "country-based", None)
MAX_LOCATIONS = 100  # per DOI: a 10320/loc value stays a few kilobytes


@dataclass(frozen=True)
class Location:
    """One URL of a collection item."""

    url: str
    label: str | None
    property: str | None
    country: str | None
    mime_type: str | None


@dataclass(frozen=True)
class ResourceRecord:
    seq: int
    doi: str
    part: str  # the body item's local name: doi_resources, fundref_data, ...
    locations: tuple[Location, ...] = ()
    lock: str | None = None  # multi-resolution lock | unlock, when a collection says so
    properties: tuple[str | None, ...] = ()  # of every collection, even an empty one (which clears its URLs)
    url: None = None  # a resource record never carries a primary URL (the store's Registration shape)
    timestamp: None = None

    @property
    def is_pending(self) -> bool:
        return False


def resource_record(seq: int, item: etree._Element) -> ResourceRecord:
    """The record a body item makes: its DOI, its part, and the URLs of its collections."""
    doi, locations, lock, properties = "", [], None, []
    for child in item:
        name = local_name(child.tag)
        if name == "doi" and not doi:
            doi = (child.text or "").strip()
        elif name == "collection":
            prop = child.get("property")
            lock = child.get("multi-resolution") or lock
            entries = [entry for entry in child if local_name(entry.tag) == "item"]
            if prop is not None or entries or not child.get("multi-resolution"):
                properties.append(prop)  # a bare <collection multi-resolution="..."/> only (un)locks
            for entry in entries:
                for resource in entry:
                    if local_name(resource.tag) == "resource":
                        locations.append(Location((resource.text or "").strip(), entry.get("label"), prop,
                                                  entry.get("country"), resource.get("mime_type")))
    return ResourceRecord(seq, doi, local_name(item.tag), tuple(locations), lock, tuple(properties))


def iter_resource_records(path: Path, skip: int = 0) -> Iterator[ResourceRecord]:
    """The batch's records from the file, after the first ``skip``; memory stays flat."""
    with open(path, "rb") as fh:
        context = etree.iterparse(fh, events=("end",), tag=tuple("{*}" + n for n in RESOURCE_ITEMS),
                                  **hardened_parser_options())
        seq = 0
        for _event, element in context:
            parent = element.getparent()
            if parent is None or local_name(parent.tag) != "body":
                continue
            seq += 1
            if seq > skip:
                yield resource_record(seq, element)
            element.clear()
            while element.getprevious() is not None:
                del parent[0]


class ResourceRegistration:
    """Applies one resource-only batch's records, chunk by chunk (the runner's ``registration``)."""

    def __init__(self, registrant: Registrant, submission_id: int, ttl: int) -> None:
        self.registrant = registrant
        self.submission_id = submission_id
        self.ttl = ttl

    def register(self, session: Session, records: Sequence[ResourceRecord]) -> list[RecordDiagnostic]:
        states = handle_states(session, [doi_key(r.doi) for r in records if not doi_problem(r.doi)])
        out = []
        for record in records:
            refusal = self._refusal(record, states.get(doi_key(record.doi)))
            if refusal:
                out.append(RecordDiagnostic(record.seq, record.doi, FAILURE, refusal[1], refusal[0]))
                continue
            resolving = [(loc.url, loc.label, loc.country) for loc in record.locations
                         if loc.property in RESOLUTION_PROPERTIES]
            changes_urls = any(p in RESOLUTION_PROPERTIES for p in record.properties)
            if changes_urls or record.lock:
                write_locations(session, doi_key(record.doi), resolving if changes_urls else None, self.ttl,
                                lock=record.lock)
            out.append(RecordDiagnostic(record.seq, record.doi, SUCCESS,
                                        SUCCESS_MESSAGES.get(record.part, DEFAULT_SUCCESS), "resources"))
        return out

    def _refusal(self, record: ResourceRecord, state) -> tuple[str, str] | None:
        problem = doi_problem(record.doi)
        if problem:
            return "invalid", f"Invalid DOI: {problem}"
        if state is None:
            return "unknown", (f"DOI not found: {record.doi} is not registered. Resource-only deposits update "
                               "existing DOIs: deposit its full metadata first")
        if state.account_id != self.registrant.id:
            return "owner", (f"User not allowed to add resources to {record.doi}: the DOI belongs to another "
                             "account")
        if state.alias_of:
            return "aliased", (f"{record.doi} is an alias of {state.alias_of}: deposit resources for "
                               f"{state.alias_of} instead")
        if state.withdrawn:
            return "withdrawn", (f"{record.doi} is withdrawn: its record cannot be changed until the "
                                 "registration agency reinstates it")
        for location in record.locations:
            problem = url_problem(location.url)
            if problem:
                return "invalid", f"Invalid resource URL in a collection item: {problem}"
        if len(record.locations) > MAX_LOCATIONS:
            return "invalid", (f"Too many collection URLs ({len(record.locations)}): at most {MAX_LOCATIONS} "
                               "per DOI")
        return None
