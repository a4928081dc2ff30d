"""DataCite's DOI states and the MDS operations that move a DOI between them.

    (none) --metadata--> draft --URL--> findable <--metadata-- registered
                          |                 \\--hide (DELETE metadata)--> registered
                          \\--delete--> (none)       (registered/findable cannot be deleted)

A draft is metadata only: it is not in the handle store and does not resolve.
Registering a URL puts the DOI in the handle store under the ``datacite``
interface, where the last write wins (``handles.store.register_latest``).
A DOI deposited through the Crossref interface is refused here, and the MDS
DOIs are refused by Crossref deposits, until an operator converts it
(``convert``, recorded in the audit trail).

Nothing received is lost: each accepted metadata body is a submission of kind
``mds-metadata`` (completed, one record result) whose folder under batches/
(``<login>/<yyyy>/<mm>/<id>/``, as for deposits) keeps the body as
``datacite.xml``, written durably in the transaction that stores the record.
The DOI's row and its indexed record name that submission, so the index can be
rebuilt from the files (``reindex``) and every version audited.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from agency.accounts import Registrant
from agency.admin.audit import Actor, record_event
from agency.datacite.index import index_record, unindex
from agency.datacite.kernel4 import DataciteRecord, Kernel4Schema, read_record
from agency.deposit.batch_files import DATACITE_FILE, store_received_bytes, submission_folder, submission_path
from agency.handles.doi_syntax import doi_key, doi_prefix, doi_problem, url_problem
from agency.handles.store import CROSSREF, DATACITE, SUCCESS, other_interface_message, register_latest, resolve_url
from agency.models import DataciteDoi, Handle, RecordResult, Submission
from agency.models.submissions import COMPLETED

MDS_METADATA_KIND = "mds-metadata"
KERNEL4_NAMESPACE = "http://datacite.org/schema/kernel-4"

DRAFT, REGISTERED, FINDABLE = "draft", "registered", "findable"
URL_SCHEMES = ("http", "https", "ftp")
MAX_MEDIA = 100  # media pairs kept per DOI
_MIME = re.compile(r"^[A-Za-z0-9!#$&^_.+-]{1,127}/[A-Za-z0-9!#$&^_.+-]{1,127}$")


class MdsRefused(Exception):
    """An MDS request we cannot honour: the HTTP status and a message that says what to fix."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class StoredMetadata:
    doi: str
    state: str
    created: bool  # a new DOI (draft) rather than an update


def now() -> datetime:
    return datetime.now(timezone.utc)


def mds_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a DataCite DOI's URL (DataCite takes http, https and ftp), or None."""
    return url_problem(url, URL_SCHEMES)


class MdsDois:
    """The MDS operations of one agency: each takes the caller's session and the authenticated registrant."""

    def __init__(self, schema: Kernel4Schema, ttl: int, batch_dir: Path) -> None:
        self.schema = schema
        self.ttl = ttl
        self.batch_dir = batch_dir

    # -- metadata ---------------------------------------------------------------------------
    def store_metadata(self, session: Session, registrant: Registrant, body: bytes,
                       path_doi: str | None = None) -> StoredMetadata:
        """Keep the record as the DOI's latest metadata: a new DOI becomes a draft, a hidden one findable again."""
        if path_doi is not None:
            _check_doi(path_doi)
        record = read_record(body, self.schema, expected_doi=path_doi)
        _check_owner(registrant, record.doi)
        _refuse_crossref_doi(session, record.doi)
        row = session.get(DataciteDoi, doi_key(record.doi))
        moment = now()
        created = row is None
        if created:
            row = DataciteDoi(key=doi_key(record.doi), doi=record.doi, prefix=doi_prefix(record.doi),
                              account_id=registrant.id, state=DRAFT, xml=record.xml, media="[]",
                              created_at=moment, updated_at=moment)
            session.add(row)
        else:
            row.xml, row.updated_at = record.xml, moment
            if row.state == REGISTERED:
                row.state = FINDABLE
        received = self._keep_body(session, registrant, body, record, moment,
                                   "mds-metadata-post" if path_doi is None else "mds-metadata-put", row.state)
        row.submission_id = received.id
        session.flush()
        if row.state == FINDABLE:
            index_record(session, record, row.url, registrant.login, received.id, received.storage_path)
        return StoredMetadata(row.doi, row.state, created)

    def _keep_body(self, session: Session, registrant: Registrant, body: bytes, record: DataciteRecord,
                   moment: datetime, operation: str, state: str) -> Submission:
        """The body as received, in its own submission folder, and the submission that says so."""
        submission = Submission(account_id=registrant.id, kind=MDS_METADATA_KIND, operation=operation,
                                status=COMPLETED, file_name=DATACITE_FILE, namespace=KERNEL4_NAMESPACE,
                                byte_size=len(body), sha256=hashlib.sha256(body).hexdigest(), received_at=moment,
                                started_at=moment, completed_at=moment, record_count=1, success_count=1,
                                records_done=1)
        session.add(submission)
        session.flush()
        submission.storage_path = submission_folder(registrant.login, moment, submission.id)
        session.add(RecordResult(submission_id=submission.id, seq=1, doi=record.doi, status=SUCCESS,
                                 message=f"DataCite metadata stored ({state})", outcome="mds-metadata"))
        store_received_bytes(body, self.batch_dir, submission.storage_path, DATACITE_FILE)
        return submission

    def stored_body(self, session: Session, row: DataciteDoi) -> bytes | None:
        """The DOI's latest metadata as kept under batches/ (None when none was received through the MDS)."""
        submission = session.get(Submission, row.submission_id) if row.submission_id is not None else None
        if submission is None:
            return None
        return submission_path(self.batch_dir, submission.storage_path, DATACITE_FILE).read_bytes()

    def reindex(self, session: Session, prefix: str | None = None) -> int:
        """Index every findable DOI (of ``prefix``) again from its latest body under batches/; returns how
        many. The files, not the database copy, are the source: what was received is what is indexed."""
        from agency.models import Account

        query = select(DataciteDoi, Account.login).join(Account, Account.id == DataciteDoi.account_id).where(
            DataciteDoi.state == FINDABLE, DataciteDoi.submission_id.is_not(None)).order_by(DataciteDoi.key)
        if prefix is not None:
            query = query.where(DataciteDoi.prefix == prefix)
        count = 0
        for row, login in session.execute(query).all():
            submission = session.get(Submission, row.submission_id)
            body = self.stored_body(session, row)
            index_record(session, read_record(body, self.schema), row.url, login, submission.id,
                         submission.storage_path)
            count += 1
        return count

    def metadata(self, session: Session, registrant: Registrant, doi: str) -> bytes:
        row = self._own_row(session, registrant, doi)
        if row.xml is None:
            raise MdsRefused(404, f"DOI {doi} has no DataCite metadata yet: POST it to /metadata first.")
        return row.xml

    def hide(self, session: Session, registrant: Registrant, doi: str) -> str:
        """DELETE /metadata: a findable DOI becomes registered (it still resolves). Returns the new state."""
        row = self._own_row(session, registrant, doi)
        if row.state == FINDABLE:
            row.state, row.updated_at = REGISTERED, now()
            unindex(session, row.doi)
        return row.state

    # -- DOIs ---------------------------------------------------------------------------------
    def register_url(self, session: Session, registrant: Registrant, doi: str, url: str) -> str:
        """Mint (draft → findable) or re-point the DOI; the last write wins. Returns the state."""
        _check_doi(doi)
        _check_owner(registrant, doi)
        problem = mds_url_problem(url)
        if problem:
            raise MdsRefused(400, f"Invalid url= line: {problem}.")
        _refuse_crossref_doi(session, doi)
        row = session.get(DataciteDoi, doi_key(doi))
        if row is None:
            raise MdsRefused(412, f"No metadata for DOI {doi}: POST its DataCite XML to /metadata before "
                                  "registering its URL.")
        if not register_latest(session, row.doi, url, registrant.id, self.ttl):
            raise MdsRefused(403, other_interface_message(doi, CROSSREF))  # deposited in between
        row.url, row.updated_at = url, now()
        if row.state == DRAFT:
            row.state = FINDABLE
        if row.state == FINDABLE and row.xml is not None:
            received = session.get(Submission, row.submission_id) if row.submission_id is not None else None
            index_record(session, read_record(row.xml, self.schema), url, registrant.login,
                         received.id if received else None, received.storage_path if received else None)
        return row.state

    def url_of(self, session: Session, registrant: Registrant, doi: str) -> str | None:
        """The DOI's URL; None for a draft (known, not minted)."""
        _check_doi(doi)
        _check_owner(registrant, doi)
        row = session.get(DataciteDoi, doi_key(doi))
        if row is not None and row.state == DRAFT:
            return None
        url = resolve_url(session, doi)
        if url is None:
            raise MdsRefused(404, f"DOI not found: {doi} is not registered.")
        return url

    def dois(self, session: Session, registrant: Registrant) -> Iterator[str]:
        """The account's minted (registered or findable) DOIs, in key order, read in pages."""
        query = (select(DataciteDoi.doi).where(DataciteDoi.account_id == registrant.id,
                                               DataciteDoi.state != DRAFT)
                 .order_by(DataciteDoi.key).execution_options(yield_per=1000))
        yield from session.scalars(query)

    def delete_draft(self, session: Session, registrant: Registrant, doi: str) -> None:
        row = self._own_row(session, registrant, doi)
        if row.state != DRAFT:
            raise MdsRefused(405, f"DOI {doi} is {row.state}: only draft DOIs can be deleted. "
                                  "Hide it instead (DELETE /metadata/{doi}).")
        session.delete(row)

    # -- media --------------------------------------------------------------------------------
    def media(self, session: Session, registrant: Registrant, doi: str) -> list[tuple[str, str]]:
        row = self._own_row(session, registrant, doi)
        pairs = [tuple(p) for p in json.loads(row.media or "[]")]
        if not pairs:
            raise MdsRefused(404, f"No media for DOI {doi}: POST mime-type=URL lines to /media/{doi} to add some.")
        return pairs

    def add_media(self, session: Session, registrant: Registrant, doi: str, pairs: list[tuple[str, str]]) -> None:
        """Add or replace (by mime type) the DOI's media; at most MAX_MEDIA pairs are kept."""
        row = self._own_row(session, registrant, doi)
        for mime, url in pairs:
            if not _MIME.match(mime):
                raise MdsRefused(400, f"Invalid media line: {mime[:100]!r} is not a mime type (type/subtype).")
            problem = mds_url_problem(url)
            if problem:
                raise MdsRefused(400, f"Invalid media line for {mime}: {problem}.")
        media = dict(json.loads(row.media or "[]"))
        media.update(pairs)
        if len(media) > MAX_MEDIA:
            raise MdsRefused(400, f"A DOI can have at most {MAX_MEDIA} media entries; this would make {len(media)}.")
        row.media, row.updated_at = json.dumps(sorted(media.items())), now()

    def _own_row(self, session: Session, registrant: Registrant, doi: str) -> DataciteDoi:
        _check_doi(doi)
        _check_owner(registrant, doi)
        row = session.get(DataciteDoi, doi_key(doi))
        if row is None:
            handle = session.get(Handle, doi_key(doi))
            if handle is not None and handle.interface == CROSSREF:
                raise MdsRefused(404, f"DOI {doi} was deposited through the Crossref interface and has no "
                                      "DataCite record; use the Crossref interface, or ask the operator to "
                                      "convert it to DataCite.")
            raise MdsRefused(404, f"DOI not found: {doi} is not known to this agency's MDS.")
        return row


def _check_doi(doi: str) -> None:
    problem = doi_problem(doi)
    if problem:
        raise MdsRefused(400, f"Invalid DOI {doi[:100]!r}: {problem}.")


def _check_owner(registrant: Registrant, doi: str) -> None:
    prefix = doi_prefix(doi)
    if not registrant.owns_prefix(prefix):
        owned = ", ".join(sorted(registrant.prefixes)) or "none"
        raise MdsRefused(403, f"Prefix {prefix} is not one of this account's prefixes ({owned}); "
                              "use a DOI under one of them.")


def _refuse_crossref_doi(session: Session, doi: str) -> None:
    handle = session.get(Handle, doi_key(doi))
    if handle is not None and handle.interface != DATACITE:
        raise MdsRefused(403, other_interface_message(doi, handle.interface))


def convert(session: Session, doi: str, to: str, actor: Actor, reason: str | None = None) -> None:
    """An operator moves a registered DOI to the other interface (audited).

    To DataCite: the DOI becomes ``registered`` with no metadata until the MDS
    sends some. To Crossref: its MDS record is dropped; later Crossref deposits
    must carry a timestamp newer than the last MDS write.
    """
    if to not in (CROSSREF, DATACITE):
        raise ValueError(f"convert to {CROSSREF!r} or {DATACITE!r}, not {to!r}")
    handle = session.get(Handle, doi_key(doi))
    if handle is None:
        raise LookupError(f"DOI {doi} is not in the handle store: only registered DOIs can be converted")
    before = handle.interface
    if before == to:
        raise ValueError(f"DOI {doi} is already managed through {to}")
    handle.interface = to
    row = session.get(DataciteDoi, handle.key)
    if to == DATACITE and row is None:
        moment = now()
        session.add(DataciteDoi(key=handle.key, doi=handle.name, prefix=handle.prefix, account_id=handle.account_id,
                                state=REGISTERED, xml=None, url=resolve_url(session, doi), media="[]",
                                created_at=moment, updated_at=moment))
    elif to == CROSSREF and row is not None:
        session.execute(delete(DataciteDoi).where(DataciteDoi.key == handle.key))
        unindex(session, handle.name)  # the next metadata load indexes its Crossref deposits
    record_event(session, actor, "doi.convert", handle.name, account_id=handle.account_id,
                 before={"interface": before}, after={"interface": to}, reason=reason)

