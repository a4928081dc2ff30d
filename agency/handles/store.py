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

from sqlalchemy import String, and_, delete, func, select, update
from sqlalchemy.orm import Session

from agency.accounts import Registrant
from agency.db import RowsTable, bulk_insert
from agency.handles.doi_syntax import doi_key, doi_prefix, doi_problem, url_problem
from agency.handles.values import ALL_ADMIN_PERMISSIONS, AdminRecord, HandleValue as Value, Reference
from agency.models import Handle, HandleValue, Prefix


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
        refusals = {r.seq: self._precheck(r) for r in records}
        transferred = self._transferred_here(session, [r for r in records if refusals[r.seq] is not None
                                                        and refusals[r.seq].outcome == "prefix"])
        blocked = blocked_names(session, [doi_key(r.doi) for r in records])
        for record in records:
            refusal = refusals[record.seq]
            if refusal is not None and doi_key(record.doi) in transferred:
                refusal = self._precheck(record, owned=True)
            if refusal is None and blocked and doi_key(record.doi) in blocked:
                refusal = RecordDiagnostic(record.seq, record.doi, FAILURE, f"Record not processed because "
                                           f"{record.doi} {blocked[doi_key(record.doi)]}", "blocked")
            if refusal:
                diagnostics[record.seq] = refusal
            else:
                writable.append(record)
        if writable:
            for d in self._write(session, writable):
                diagnostics[d.seq] = d
        return [diagnostics[r.seq] for r in records]

    def _transferred_here(self, session: Session, records: list[Registration]) -> set[str]:
        """Keys of DOIs under others' prefixes that this account owns (they were transferred to it)."""
        if not records:
            return set()
        keys = sorted({doi_key(r.doi) for r in records})
        return set(session.scalars(select(Handle.key).where(Handle.key.in_(keys),
                                                            Handle.account_id == self.registrant.id)))

    def _precheck(self, record: Registration, owned: bool = False) -> RecordDiagnostic | None:
        def failure(outcome: str, message: str) -> RecordDiagnostic:
            return RecordDiagnostic(record.seq, record.doi, FAILURE, message, outcome)

        problem = doi_problem(record.doi)
        if problem:
            return failure("invalid", f"Invalid DOI: {problem}")
        prefix = doi_prefix(record.doi)
        elsewhere = self.registrant.elsewhere.get(prefix)
        if elsewhere:
            return failure("prefix", f"Prefix {prefix} has moved to another registration agency ({elsewhere}): "
                                     "deposit its DOIs there")
        if not owned and not self.registrant.owns_prefix(prefix):
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
        stored = {key: (version, owner, interface) for key, version, owner, interface in session.execute(
            select(Handle.key, Handle.version, Handle.account_id, Handle.interface)
            .where(Handle.key.in_(stale_keys)))} \
            if stale_keys else {}
        _write_values(session, [(key, by_key[key]) for key in sorted(written)], self.ttl)
        resets = note_version_resets(session, [k for k in written if written[k] > 1], self.submission_id)
        out = []
        for key, record in by_key.items():
            if key in written:
                added = written[key] == 1
                message = ("Successfully added" if added else "Successfully updated") + resets.get(key, "")
                out.append(RecordDiagnostic(record.seq, record.doi, SUCCESS, message, "added" if added else "updated"))
            elif key in stored and stored[key][2] != CROSSREF:
                out.append(RecordDiagnostic(record.seq, record.doi, FAILURE, other_interface_message(
                    record.doi, stored[key][2]), "interface"))
            elif key in stored and stored[key][1] != self.registrant.id:
                out.append(RecordDiagnostic(record.seq, record.doi, FAILURE,
                                            f"User not allowed to update {record.doi}: it was transferred to another "
                                            "account, which alone may update it now", "owner"))
            else:
                version = stored.get(key, ("0", None, None))[0]
                out.append(RecordDiagnostic(record.seq, record.doi, FAILURE,
                                            stale_message(record.timestamp or "", version), "stale"))
        return out


def other_interface_message(doi: str, interface: str) -> str:
    """Why a write through one interface may not change a DOI the other one manages."""
    if interface == DATACITE:
        return (f"DOI {doi} is managed through the DataCite MDS API (last write wins there), not Crossref "
                "deposits; update it through the MDS API, or ask the operator to convert it to Crossref.")
    return (f"DOI {doi} was deposited through the Crossref interface (newer timestamp wins there); "
            "update it with a Crossref deposit, or ask the operator to convert it to DataCite.")


def _newer_wins(statement):
    """ON CONFLICT: the stored name is replaced only by a strictly newer version of a Crossref-managed DOI from
    its owning account (a transfer changes the owner; deciding it here is what makes a deposit racing a transfer
    land whole before it, or fail after it)."""
    table = Handle.__table__
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "name": excluded.name, "version": excluded.version, "revision": table.c.revision + 1,
            "account_id": excluded.account_id, "submission_id": excluded.submission_id,
            "updated_at": excluded.updated_at,
        },
        where=and_(table.c.version < excluded.version, table.c.account_id == excluded.account_id,
                   table.c.interface == CROSSREF),
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


def derived_admin_value(handle: Handle, ttl: int, prefix: str | None = None) -> Value:
    """The HS_ADMIN at index 100 of a deposited handle: the admin group (``0.NA/<prefix>`` 200) of ``prefix``,
    the owner's prefix (see ``admin_prefix``), by default the handle's own."""
    return Value(ADMIN_INDEX, "HS_ADMIN", admin_value_data(prefix or handle.prefix), ttl,
                 timestamp=epoch_seconds(handle.created_at))


def handle_values(session: Session, name: str) -> list[Value]:
    """The values of a handle, by index (empty when the handle does not exist).

    HS_ADMIN names the owning account's prefix admin group (the DOI's own prefix while its
    registrant owns it; after a transfer, the new owner's), so it is derived from the handle
    row rather than stored once per DOI: that keeps registration to one value row per record.
    A handle that stores HS_ADMIN values of its own (created or edited over the Handle
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
    return sorted([*stored, derived_admin_value(handle, ttl, admin_prefix(session, handle))], key=lambda v: v.index)


def admin_prefix(session: Session, handle: Handle) -> str:
    """The prefix whose admin group administers a handle: its own while its owner holds that prefix,
    else the owner's first prefix (the DOI was transferred)."""
    owned = list(session.scalars(select(Prefix.prefix).where(Prefix.account_id == handle.account_id)
                                 .order_by(Prefix.prefix)))
    return handle.prefix if handle.prefix in owned or not owned else owned[0]


def resolve_url(session: Session, name: str) -> str | None:
    """The URL a DOI resolves to (None when unknown or pending)."""
    data = session.scalar(select(HandleValue.data).where(
        HandleValue.handle_key == doi_key(name), HandleValue.idx == URL_INDEX))
    return value_text(data)


def value_text(data) -> str | None:
    """A text value's data (URL, HS_ALIAS, 10320/loc): stored as bytes, as the protocol carries values."""
    return None if data is None else bytes(data).decode("utf-8", "replace")


# ---------------------------------------------------------------------------
# Record states changed after registration: collections of URLs, aliases, URL
# updates (resource-only deposits, bulk URL updates, RA administration).
# Every write of a handle value outside a deposit goes through these functions.

LOCATIONS_INDEX, ALIAS_INDEX = 2, 3
LOCATIONS_TYPE, ALIAS_TYPE = "10320/loc", "HS_ALIAS"
MAX_ALIAS_HOPS = 8  # resolution follows at most this many aliases; longer chains are refused when made


@dataclass(frozen=True)
class HandleState:
    """What a change to an existing DOI needs to know: who owns it, is it an alias, is it withdrawn."""

    key: str
    name: str
    account_id: int
    version: str
    alias_of: str | None
    withdrawn: bool


def handle_states(session: Session, keys: Sequence[str]) -> dict[str, HandleState]:
    """The state of each existing handle among ``keys`` (absent keys are not registered), in three queries."""
    from agency.models import Withdrawal

    keys = sorted(set(keys))
    if not keys:
        return {}
    rows = session.execute(select(Handle.key, Handle.name, Handle.account_id, Handle.version)
                           .where(Handle.key.in_(keys))).all()
    aliases = dict(session.execute(select(HandleValue.handle_key, HandleValue.data).where(
        HandleValue.handle_key.in_(keys), HandleValue.idx == ALIAS_INDEX)).all())
    withdrawn = set(session.scalars(select(Withdrawal.handle_key).where(
        Withdrawal.handle_key.in_(keys), Withdrawal.active.is_(True))))
    return {key: HandleState(key, name, account_id, version, value_text(aliases.get(key)), key in withdrawn)
            for key, name, account_id, version in rows}


def _put_value(session: Session, key: str, index: int, value_type: str, data: str, ttl: int) -> None:
    bulk_insert(session.connection(), HandleValue.__table__,
                [{"handle_key": key, "idx": index, "type": value_type, "data": data.encode()}],
                constants={"ttl": ttl, "timestamp": func.current_timestamp()}, on_conflict=_replace_value)


def _drop_value(session: Session, key: str, index: int) -> None:
    session.execute(delete(HandleValue).where(HandleValue.handle_key == key, HandleValue.idx == index)
                    .execution_options(synchronize_session=False))


MULTI_RESOLUTION_STATES = ("lock", "unlock")
_LOCATIONS_ELEMENT = re.compile(r"^<locations\b[^>]*>(.*)</locations>$|^<locations\b[^>]*/>$", re.DOTALL)
_LOCK_ATTRIBUTE = re.compile(r'^<locations\b[^>]*\smulti-resolution="(lock|unlock)"')


def locations_value(locations: Sequence[tuple[str, str | None, str | None]], lock: str | None = None) -> str:
    """A 10320/loc value (Handle.Net multiple resolution): one <location> per (url, label, country).

    ``lock`` is Crossref's multiple-resolution lock state (``lock`` / ``unlock``), kept as a
    ``multi-resolution`` attribute of <locations> beside the URLs it governs (resolvers ignore
    attributes they do not know); with a lock state and no URL the value holds just the state."""
    from xml.sax.saxutils import quoteattr

    lines = []
    for number, (url, label, country) in enumerate(locations):
        extra = (f" label={quoteattr(label)}" if label else "") + (f" country={quoteattr(country)}" if country
                                                                     else "")
        lines.append(f'<location id="{number}" href={quoteattr(url)}{extra} />')
    state = f' multi-resolution="{lock}"' if lock in MULTI_RESOLUTION_STATES else ""
    return f'<locations chooseby="locatt,country,weighted"{state}>' + "".join(lines) + "</locations>"


def multi_resolution_state(value: str | None) -> str | None:
    """The lock state (``lock`` / ``unlock``) a 10320/loc value carries, or None."""
    found = _LOCK_ATTRIBUTE.match(value or "")
    return found.group(1) if found else None


def write_locations(session: Session, key: str, locations: Sequence[tuple[str, str | None, str | None]] | None,
                    ttl: int, lock: str | None = None) -> None:
    """Replace the DOI's secondary URLs and/or its multiple-resolution lock state (one 10320/loc value).

    ``locations`` None keeps the URLs the value has (a deposit that only locks or unlocks);
    ``lock`` None keeps the state it has. With neither URLs nor a state the value is removed."""
    current = value_text(session.scalar(select(HandleValue.data).where(HandleValue.handle_key == key,
                                                                       HandleValue.idx == LOCATIONS_INDEX)))
    lock = lock if lock in MULTI_RESOLUTION_STATES else multi_resolution_state(current)
    if locations is None:
        found = _LOCATIONS_ELEMENT.match(current or "")
        inner = (found.group(1) or "") if found else ""
        data = locations_value([], lock).replace("</locations>", inner + "</locations>") if inner or lock else None
    else:
        data = locations_value(locations, lock) if locations or lock else None
    if data is not None:
        _put_value(session, key, LOCATIONS_INDEX, LOCATIONS_TYPE, data, ttl)
    else:
        _drop_value(session, key, LOCATIONS_INDEX)


def set_alias(session: Session, key: str, target: str, ttl: int) -> None:
    """Make the handle ``key`` an alias of the DOI ``target``: its HS_ALIAS value, and its alias_links row."""
    from agency.models import AliasLink

    _put_value(session, key, ALIAS_INDEX, ALIAS_TYPE, target, ttl)
    session.merge(AliasLink(alias_key=key, target=target))


def clear_alias(session: Session, key: str) -> None:
    from agency.models import AliasLink

    _drop_value(session, key, ALIAS_INDEX)
    session.execute(delete(AliasLink).where(AliasLink.alias_key == key).execution_options(synchronize_session=False))


def alias_chain(session: Session, name: str, limit: int = MAX_ALIAS_HOPS + 1) -> list[str]:
    """The names an alias leads through, ``name`` first, stopping at a name that is no alias,
    at a name seen before (a cycle: it ends the list twice) or after ``limit`` hops."""
    chain = [name]
    seen = {doi_key(name)}
    while len(chain) <= limit:
        target = value_text(session.scalar(select(HandleValue.data).where(
            HandleValue.handle_key == doi_key(chain[-1]), HandleValue.idx == ALIAS_INDEX)))
        if target is None:
            break
        chain.append(target)
        if doi_key(target) in seen:
            break
        seen.add(doi_key(target))
    return chain


def replace_urls(session: Session, urls: Sequence[tuple[str, str]], ttl: int) -> None:
    """Set the URL value (index 1) of existing handles, given as (key, url), in one statement."""
    bulk_insert(session.connection(), HandleValue.__table__,
                [{"handle_key": key, "data": url.encode()} for key, url in sorted(urls)],
                constants={"idx": URL_INDEX, "type": "URL", "ttl": ttl, "timestamp": func.current_timestamp()},
                on_conflict=_replace_value)


def final_names(session: Session, names: Sequence[str]) -> dict[str, str]:
    """For each of ``names`` that is an alias: the DOI its chain of aliases ends at (at most
    MAX_ALIAS_HOPS hops; one query per hop, for all names at once). Names that are no alias are absent."""
    from agency.models import AliasLink

    finals: dict[str, str] = {}
    if session.scalar(select(AliasLink.alias_key).limit(1)) is None:
        return finals  # no alias anywhere: one index probe
    current = {name: name for name in names}
    for _hop in range(MAX_ALIAS_HOPS):
        keys = {doi_key(now): name for name, now in current.items()}
        if not keys:
            break
        targets = dict(session.execute(select(AliasLink.alias_key, AliasLink.target).where(
            AliasLink.alias_key.in_(list(keys)))).all())
        current = {}
        for key, name in keys.items():
            if key in targets:
                finals[name] = targets[key]
                current[name] = targets[key]
    return finals


def blocked_names(session: Session, keys: Sequence[str]) -> dict[str, str]:
    """Which of ``keys`` a deposit may not change, with why (to follow the DOI in a message): aliases, naming
    their primary, and withdrawn DOIs.

    Runs on every chunk of every deposit: each table is asked first whether it has any row at all
    (one index probe), and only then for these keys."""
    from agency.models import AliasLink, Withdrawal

    out: dict[str, str] = {}
    wanted: KeyList | None = None
    if session.scalar(select(AliasLink.alias_key).limit(1)) is not None:
        wanted = KeyList.of(session, keys)
        for key, target in session.execute(
                select(AliasLink.alias_key, AliasLink.target).select_from(wanted.table.source)
                .join(AliasLink, AliasLink.alias_key == wanted.key), wanted.parameters):
            out[key] = f"is an alias of {target}: deposit the metadata of {target} instead"
    active = Withdrawal.active.is_(True)
    if session.scalar(select(Withdrawal.handle_key).where(active).limit(1)) is not None:
        wanted = wanted or KeyList.of(session, keys)
        for (key,) in session.execute(
                select(Withdrawal.handle_key).select_from(wanted.table.source)
                .join(Withdrawal, Withdrawal.handle_key == wanted.key).where(active), wanted.parameters):
            out[key] = "is withdrawn: the registration agency must reinstate it before it can be updated"
    return out


def current_url(session: Session, key: str) -> str | None:
    return value_text(session.scalar(select(HandleValue.data).where(HandleValue.handle_key == key,
                                                                     HandleValue.idx == URL_INDEX)))


def clear_url(session: Session, key: str) -> None:
    """Remove the URL value: the DOI resolves to its pending-publication page again."""
    _drop_value(session, key, URL_INDEX)


def note_version_resets(session: Session, keys: Sequence[str], submission_id: int) -> dict[str, str]:
    """For keys whose stored version the RA reset since their last deposit: the sentence their log line
    gets, the reset now noted against ``submission_id``. One indexed look-up when no reset is pending."""
    from agency.models import VersionReset

    pending = VersionReset.noted_submission_id.is_(None)
    if not keys or session.scalar(select(VersionReset.id).where(pending).limit(1)) is None:
        return {}
    rows = session.execute(select(VersionReset.id, VersionReset.handle_key, VersionReset.from_version,
                                  VersionReset.to_version, VersionReset.reset_at)
                           .where(pending, VersionReset.handle_key.in_(list(keys))).order_by(VersionReset.id)).all()
    notes = {key: (f" (the stored version was reset from {shown_version(before)} to {shown_version(after)} by the "
                   f"registration agency on {at:%Y-%m-%d})") for _id, key, before, after, at in rows}
    if rows:
        session.execute(update(VersionReset).where(VersionReset.id.in_([r[0] for r in rows]))
                        .values(noted_submission_id=submission_id).execution_options(synchronize_session=False))
    return notes


@dataclass(frozen=True)
class KeyList:
    """Many handle keys as one parameter, read as a table (``db.RowsTable``): a look-up of a chunk's
    keys costs one bound value instead of one per key (2,000 bound values cost tens of milliseconds)."""

    table: RowsTable
    parameters: dict

    @property
    def key(self):
        return self.table.columns[0]

    @classmethod
    def of(cls, session: Session, keys: Sequence[str]) -> "KeyList":
        dialect = session.connection().dialect.name
        table = _KEY_TABLES.get(dialect)
        if table is None:
            table = _KEY_TABLES[dialect] = RowsTable.of(dialect, [String(2048)], "keys")
        return cls(table, table.parameters([[key] for key in keys]))


_KEY_TABLES: dict[str, RowsTable] = {}  # one per dialect: built once, and SQLAlchemy's cache then knows it


def rekey_stored_names(session: Session) -> int:
    """Bring keys stored under the old rule (full Unicode upper case) in line with ``doi_key``
    (ASCII letters only); returns how many names were re-keyed.

    Only names with non-ASCII characters can have changed, and no two stored names can
    meet under the new key (the new rule folds less than the old one). Each row is copied
    under its new key, its dependants moved over, and the old row deleted, so foreign keys
    hold throughout. Run once after upgrading (``agency handles rekey``); safe to run again.
    """
    from agency.models import MetadataRecord, MetadataResource

    moved = _rekey_table(session, Handle.__table__, "key", "name", _referring(Handle.__table__))
    moved += _rekey_table(session, MetadataRecord.__table__, "doi_key", "doi", _referring(MetadataRecord.__table__))
    moved += _rekey_table(session, MetadataResource.__table__, "doi_key", "doi", [])
    return moved


def _referring(table) -> list:
    """Every (table, column) whose foreign key points at ``table``: values, aliases, withdrawals, resets..."""
    return [(other, fk.parent.name) for other in table.metadata.tables.values()
            for fk in other.foreign_keys if fk.column.table is table]


def _rekey_table(session: Session, table, key_column: str, name_column: str, dependants) -> int:
    key, name = table.c[key_column], table.c[name_column]
    stale = [(old, doi_key(spelling)) for old, spelling in session.execute(select(key, name))
             if not old.isascii() and doi_key(spelling) != old]
    for old, new in stale:
        row = dict(session.execute(select(table).where(key == old)).mappings().one())
        session.execute(table.insert().values({**row, key_column: new}))
        for dependant, column in dependants:
            session.execute(dependant.update().where(dependant.c[column] == old).values({column: new}))
        session.execute(delete(table).where(key == old))
    return len(stale)
