"""The handle store: registering DOI names with timestamp precedence, and reading them.

Precedence is decided by the database in one conditional statement per chunk
(``INSERT … ON CONFLICT (key) DO UPDATE … WHERE stored.version < new.version``),
never by reading then writing in Python, so concurrent workers on PostgreSQL
cannot let older data win.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timezone
from typing import Protocol, Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from agency.accounts import Registrant
from agency.db import bulk_insert
from agency.handles.doi_syntax import doi_key, doi_prefix, doi_problem, url_problem
from agency.handles.values import ALL_ADMIN_PERMISSIONS, AdminRecord, HandleValue as Value, Reference
from agency.models import Handle, HandleValue


class Registration(Protocol):
    """What the store needs of a record to register, whichever interface it came through.

    A protocol rather than the deposit's record class, so the store knows nothing of deposits.
    """

    seq: int
    doi: str
    url: str | None
    timestamp: str | None

    @property
    def is_pending(self) -> bool: ...

SUCCESS, WARNING, FAILURE = "Success", "Warning", "Failure"
URL_INDEX, ADMIN_INDEX = 1, 100
ADMIN_HANDLE_INDEX = 200
DEFAULT_TTL = 86400
VERSION_DIGITS = 19
CROSSREF, DATACITE = "crossref", "datacite"  # the interface that manages a DOI (Handle.interface)
_TIMESTAMP = re.compile(r"^[0-9]{1,19}$")


@dataclass(frozen=True)
class RecordDiagnostic:
    """What happened to one record: the line of the batch log that reports it."""

    seq: int
    doi: str
    status: str
    message: str
    outcome: str  # added | updated | stale | prefix | invalid | duplicate | interface


HandleValueView = Value  # what the read functions return: the codec's value (agency.handles.values)


def version_of(timestamp: str) -> str:
    """The sortable form of a deposit timestamp: digits, zero-padded to 19."""
    return timestamp.zfill(VERSION_DIGITS)


def shown_version(version: str) -> str:
    return version.lstrip("0") or "0"


def admin_handle(prefix: str) -> str:
    return f"0.NA/{prefix}"


@lru_cache(maxsize=4096)
def admin_value_data(prefix: str) -> bytes:
    """The HS_ADMIN data every DOI of ``prefix`` carries: the prefix's admin group, all permissions."""
    return AdminRecord(admin_handle(prefix), ADMIN_HANDLE_INDEX, ALL_ADMIN_PERMISSIONS).encode()


def timestamp_problem(timestamp: str | None) -> str | None:
    if not timestamp:
        return "Record has no timestamp and the batch head gives none"
    if not _TIMESTAMP.match(timestamp):
        return (f"Invalid timestamp {timestamp[:40]!r}: a timestamp must be 1 to 19 digits "
                "(e.g. YYYYMMDDhhmmss, optionally followed by more digits)")
    return None


def stale_message(submitted: str, stored_version: str) -> str:
    stored = shown_version(stored_version)
    message = (f"Record not processed because submitted version: {submitted} is less or equal to "
               f"previously submitted version {stored}")
    if len(submitted) in (9, 10, 11, 13) and len(stored) >= 14:
        message += (" (the submitted timestamp looks like Unix seconds while the stored one looks like "
                    "YYYYMMDDhhmmss...: send timestamps in the same form as before)")
    return message


class BatchRegistration:
    """Registers one submission's records, chunk by chunk, remembering what the batch has seen."""

    def __init__(self, registrant: Registrant, submission_id: int, ttl: int,
                 seen: dict[str, int] | None = None) -> None:
        self.registrant = registrant
        self.submission_id = submission_id
        self.ttl = ttl
        self.seen: dict[str, int] = dict(seen or {})  # key -> seq of first occurrence

    def register(self, session: Session, records: Sequence[Registration]) -> list[RecordDiagnostic]:
        diagnostics: dict[int, RecordDiagnostic] = {}
        writable: list[Registration] = []
        for record in records:
            refusal = self._precheck(record)
            if refusal:
                diagnostics[record.seq] = refusal
            else:
                writable.append(record)
        if writable:
            for d in self._write(session, writable):
                diagnostics[d.seq] = d
        return [diagnostics[r.seq] for r in records]

    def _precheck(self, record: Registration) -> RecordDiagnostic | None:
        def failure(outcome: str, message: str) -> RecordDiagnostic:
            return RecordDiagnostic(record.seq, record.doi, FAILURE, message, outcome)

        problem = doi_problem(record.doi)
        if problem:
            return failure("invalid", f"Invalid DOI: {problem}")
        prefix = doi_prefix(record.doi)
        if not self.registrant.owns_prefix(prefix):
            return failure("prefix", f"User not allowed to add records for prefix: {prefix}")
        if not record.is_pending:
            problem = url_problem(record.url or "")
            if problem:
                return failure("invalid", f"Invalid resource URL: {problem}")
        problem = timestamp_problem(record.timestamp)
        if problem:
            return failure("invalid", problem)
        key = doi_key(record.doi)
        first = self.seen.get(key)
        if first is not None:
            return failure("duplicate", f"Duplicate DOI in this batch: {record.doi} was already given "
                                        f"in record {first}; only the first occurrence is processed")
        self.seen[key] = record.seq
        return None

    def _write(self, session: Session, records: list[Registration]) -> list[RecordDiagnostic]:
        by_key = {doi_key(r.doi): r for r in records}
        rows = [{"key": key, "name": r.doi, "prefix": doi_prefix(r.doi), "version": version_of(r.timestamp or "")}
                for key, r in sorted(by_key.items())]  # one lock order for every writer: no deadlocks
        written = _conditional_upsert(session, rows, self.registrant.id, self.submission_id)
        stale_keys = [k for k in by_key if k not in written]
        stored = {key: (version, interface) for key, version, interface in session.execute(
            select(Handle.key, Handle.version, Handle.interface).where(Handle.key.in_(stale_keys)))} \
            if stale_keys else {}
        _write_values(session, [(key, by_key[key]) for key in sorted(written)], self.ttl)
        out = []
        for key, record in by_key.items():
            if key in written:
                added = written[key] == 1
                out.append(RecordDiagnostic(record.seq, record.doi, SUCCESS,
                                            "Successfully added" if added else "Successfully updated",
                                            "added" if added else "updated"))
            elif stored.get(key, ("0", CROSSREF))[1] != CROSSREF:
                out.append(RecordDiagnostic(record.seq, record.doi, FAILURE, other_interface_message(
                    record.doi, stored[key][1]), "interface"))
            else:
                out.append(RecordDiagnostic(record.seq, record.doi, FAILURE,
                                            stale_message(record.timestamp or "", stored.get(key, ("0",))[0]),
                                            "stale"))
        return out


def other_interface_message(doi: str, interface: str) -> str:
    """Why a write through one interface may not change a DOI the other one manages."""
    if interface == DATACITE:
        return (f"DOI {doi} is managed through the DataCite MDS API (last write wins there), not Crossref "
                "deposits; update it through the MDS API, or ask the operator to convert it to Crossref.")
    return (f"DOI {doi} was deposited through the Crossref interface (newer timestamp wins there); "
            "update it with a Crossref deposit, or ask the operator to convert it to DataCite.")


def _newer_wins(statement):
    """ON CONFLICT: the stored name is replaced only by a strictly newer version of a Crossref-managed DOI."""
    table = Handle.__table__
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "name": excluded.name, "version": excluded.version, "revision": table.c.revision + 1,
            "account_id": excluded.account_id, "submission_id": excluded.submission_id,
            "updated_at": excluded.updated_at,
        },
        where=(table.c.version < excluded.version) & (table.c.interface == CROSSREF),
    )


def _replace_value(statement):
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[HandleValue.__table__.c.handle_key, HandleValue.__table__.c.idx],
        set_={"type": excluded.type, "data": excluded.data, "ttl": excluded.ttl, "timestamp": excluded.timestamp},
    )


def _conditional_upsert(session: Session, rows: list[dict], account_id: int, submission_id: int
                        ) -> dict[str, int]:
    """Insert new names, update older ones, in one statement per chunk; returns key → revision of those written.

    Times come from the database clock: binding a Python datetime costs more per
    row than the rest of the row together.
    """
    table = Handle.__table__
    now = func.current_timestamp()
    written = bulk_insert(session.connection(), table, rows,
                          constants={"revision": 1, "account_id": account_id, "submission_id": submission_id,
                                     "created_at": now, "updated_at": now},
                          on_conflict=_newer_wins, returning=(table.c.key, table.c.revision))
    return {key: revision for key, revision in written}


def _write_values(session: Session, records: list[tuple[str, Registration]], ttl: int) -> None:
    """Write each record's URL value (index 1); a pending publication has none. Records come with their keys."""
    connection = session.connection()
    pending = [key for key, r in records if r.url is None]
    if pending:
        connection.execute(delete(HandleValue.__table__).where(HandleValue.handle_key.in_(pending),
                                                               HandleValue.idx == URL_INDEX))
    urls = [{"handle_key": key, "data": r.url.encode()} for key, r in records if r.url is not None]
    bulk_insert(connection, HandleValue.__table__, urls,
                constants={"idx": URL_INDEX, "type": "URL", "ttl": ttl, "timestamp": func.current_timestamp()},
                on_conflict=_replace_value)


def register_latest(session: Session, doi: str, url: str, account_id: int, ttl: int) -> bool:
    """Register (or re-point) a DataCite-managed DOI: the last write wins.

    False when the DOI exists under the Crossref interface: it is left as it is.
    """
    table = Handle.__table__
    now = func.current_timestamp()
    key = doi_key(doi)
    # The write's time in the form Crossref timestamps usually take, so that after an operator
    # converts the DOI to Crossref a deposit must be newer than the last MDS write.
    version = version_of(datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S"))

    def last_write_wins(statement):
        excluded = statement.excluded
        return statement.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={"name": excluded.name, "version": excluded.version, "revision": table.c.revision + 1,
                  "account_id": excluded.account_id, "updated_at": excluded.updated_at},
            where=table.c.interface == DATACITE)

    written = bulk_insert(session.connection(), table,
                          [{"key": key, "name": doi, "prefix": doi_prefix(doi), "version": version}],
                          constants={"revision": 1, "account_id": account_id, "submission_id": 0,
                                     "interface": DATACITE, "created_at": now, "updated_at": now},
                          on_conflict=last_write_wins, returning=(table.c.key,))
    if not written:
        return False
    _write_values(session, [(key, _UrlOnly(url))], ttl)
    return True


@dataclass(frozen=True)
class _UrlOnly:
    url: str


def find_handle(session: Session, name: str) -> Handle | None:
    return session.get(Handle, doi_key(name))


def epoch_seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


def parse_refs(raw: str) -> tuple[Reference, ...]:
    """Handle.Net's text form of references: ``index:handle`` items separated by tabs."""
    out = []
    for item in filter(None, (raw or "").split("\t")):
        index, _, handle = item.partition(":")
        out.append(Reference(handle, int(index)))
    return tuple(out)


def format_refs(refs) -> str:
    return "\t".join(f"{r.index}:{r.handle}" for r in refs)


def value_of_row(row: HandleValue) -> Value:
    return Value(row.idx, row.type, bytes(row.data), row.ttl, row.ttl_type, epoch_seconds(row.timestamp),
                 parse_refs(row.refs), row.admin_read, row.admin_write, row.pub_read, row.pub_write)


def derived_admin_value(handle: Handle, ttl: int) -> Value:
    """The HS_ADMIN at index 100 of a deposited handle: its prefix's admin group (``0.NA/<prefix>`` 200)."""
    return Value(ADMIN_INDEX, "HS_ADMIN", admin_value_data(handle.prefix), ttl,
                 timestamp=epoch_seconds(handle.created_at))


def handle_values(session: Session, name: str) -> list[Value]:
    """The values of a handle, by index (empty when the handle does not exist).

    HS_ADMIN is the same for every deposited DOI of a prefix (the prefix's
    admin group), so it is derived from the handle row rather than stored once
    per DOI: that keeps registration to one value row per record. A handle
    that stores HS_ADMIN values of its own (created or edited over the Handle
    protocol or the REST API) shows those instead.
    """
    handle = session.get(Handle, doi_key(name))
    if handle is None:
        return []
    stored = [value_of_row(v) for v in session.scalars(
        select(HandleValue).where(HandleValue.handle_key == handle.key).order_by(HandleValue.idx))]
    if any(v.type == "HS_ADMIN" for v in stored) or any(v.index == ADMIN_INDEX for v in stored):
        return stored
    ttl = stored[0].ttl if stored else DEFAULT_TTL
    return sorted([*stored, derived_admin_value(handle, ttl)], key=lambda v: v.index)


def resolve_url(session: Session, name: str) -> str | None:
    """The URL a DOI resolves to (None when unknown or pending)."""
    data = session.scalar(select(HandleValue.data).where(
        HandleValue.handle_key == doi_key(name), HandleValue.idx == URL_INDEX))
    return None if data is None else bytes(data).decode("utf-8", "replace")
