"""Writing records into the metadata database, with per-record indexing results.

Precedence is the handle store's: a record replaces what is indexed for its
DOI only when its deposit timestamp (19-digit version) is newer or equal, and
the database decides it in one conditional upsert per chunk, so reloading a
batch rewrites identical rows and an older batch loaded late never wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Sequence

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from agency.db import bulk_insert
from agency.handles.doi_syntax import doi_key, doi_prefix
from agency.handles.store import (
    URL_INDEX, FAILURE, SUCCESS, WARNING, KeyList, shown_version, value_text, version_of,
)
from agency.metadata.identifiers import Identifier, parse_isbn, parse_issn
from agency.metadata.extraction import Contributor, IdentifierText, RecordMetadata
from agency.models import (
    Handle, HandleValue, MetadataContributor, MetadataIdentifier, MetadataJournalTitle, MetadataLocator, MetadataRecord,
)
from agency.metadata.text_keys import name_key, page_key, text_key, title_key, volume_key

SKIPPED = "Skipped"  # not registered, so not indexed
_REPEATED = 8192  # container titles, volumes, surnames and ISSNs repeat across a batch: computed once each
_LIMITS = {"volume": 255, "issue": 255, "first_page": 255, "last_page": 255, "edition_number": 64,
           "component_number": 255, "publication_type": 64}
_SHORTEST_LIMIT = min(_LIMITS.values())  # values no longer than this fit every column in _LIMITS


@dataclass(frozen=True, slots=True)
class IndexResult:
    """How indexing went for one record: Success, Warning, Failure (or Skipped when not registered)."""

    status: str
    messages: tuple[str, ...] = ()


INDEXED = IndexResult(SUCCESS, ("Metadata indexed",))  # nearly every record's result: one shared instance


@dataclass(slots=True)
class PreparedRecord:
    seq: int
    key: str
    row: dict
    contributors: list[dict]
    identifiers: list[dict]
    warnings: list[str] = field(default_factory=list)

    @property
    def locators(self) -> list[dict]:
        """(ISSN, volume, first page) rows for the journal look-up, when the record has all three."""
        volume, page = self.row.get("volume_key"), self.row.get("first_page_key")
        if not volume or not page:
            return []
        return [{"issn": i["value"], "volume_key": volume, "first_page_key": page, "doi_key": self.key}
                for i in self.identifiers if i["kind"] == "issn"]


def journal_title_rows(prepared: Sequence[PreparedRecord]) -> list[dict]:
    """The distinct journal title variants of a chunk (a journal's articles repeat the same few)."""
    journals = {(p.row["journal_title_key"], p.row["journal_abbrev_key"],
                 (p.identifiers[0]["value"],) if len(p.identifiers) == 1 and p.identifiers[0]["kind"] == "issn"
                 else tuple(i["value"] for i in p.identifiers if i["kind"] == "issn"))  # one ISSN: no generator
                for p in prepared if p.row["body_type"] == "journal" and p.identifiers}
    pairs = {(issn, title) for full, abbrev, issns in journals for issn in issns for title in (full, abbrev) if title}
    return [{"issn": issn, "title_key": title} for issn, title in sorted(pairs)]


@dataclass(frozen=True)
class LoadSource:
    """Where the records come from: stored on every row so a DOI's metadata names its batch."""

    folder: str
    login: str
    submission_id: int | None
    registrant: str | None


def _fit(name: str, value: str | None, warnings: list[str]) -> str | None:
    """``value`` cut to its column's length, with a warning when it had to be cut."""
    limit = _LIMITS[name]
    if value is not None and len(value) > limit:
        warnings.append(f"{name.replace('_', ' ')} is longer than {limit} characters; it was cut to index it")
        return value[:limit]
    return value


@lru_cache(maxsize=_REPEATED)
def _parsed_identifier(kind: str, raw: str) -> tuple[Identifier | None, str | None]:
    """The parsed identifier and the warning it deserves (None when it is fine)."""
    parsed = (parse_issn if kind == "issn" else parse_isbn)(raw)
    label = kind.upper()
    if parsed is None:
        return None, f"{label} {raw!r} is not a valid {label}; it was not indexed"
    if not parsed.valid_check_digit:
        return parsed, (f"{label} {raw} has a wrong check digit (expected {parsed.expected_check}); indexed "
                        f"as {parsed.canonical}, but look-ups by the correct {label} will not find it")
    return parsed, None


_title_key = lru_cache(maxsize=_REPEATED)(title_key)
_volume_key = lru_cache(maxsize=_REPEATED)(volume_key)
_name_key = lru_cache(maxsize=_REPEATED)(name_key)
_page_key = lru_cache(maxsize=_REPEATED)(page_key)  # first pages repeat across a batch's issues
_version_of = lru_cache(maxsize=_REPEATED)(version_of)  # a batch's records share its timestamp


def identifier_rows(key: str, identifiers: Sequence[IdentifierText], warnings: list[str]) -> list[dict]:
    """Canonical ISSN/ISBN rows; unparseable or wrong-check-digit values add a warning."""
    if len(identifiers) == 1:  # most records: one ISSN, nothing to merge
        identifier = identifiers[0]
        parsed, warning = _parsed_identifier(identifier.kind, identifier.raw)
        if warning:
            warnings.append(warning)
        return [] if parsed is None else [_identifier_row(key, identifier, parsed)]
    rows: dict[tuple[str, str], dict] = {}
    for identifier in identifiers:
        parsed, warning = _parsed_identifier(identifier.kind, identifier.raw)
        if warning:
            warnings.append(warning)
        if parsed is None:
            continue
        if (identifier.kind, parsed.canonical) not in rows:
            rows[identifier.kind, parsed.canonical] = _identifier_row(key, identifier, parsed)
    return list(rows.values())


def _identifier_row(key: str, identifier: IdentifierText, parsed: Identifier) -> dict:
    return {"doi_key": key, "kind": identifier.kind, "value": parsed.canonical,
            "media_type": (identifier.media_type or None) and identifier.media_type[:16],
            "valid_check_digit": parsed.valid_check_digit, "raw": identifier.raw[:255]}


def contributor_rows(key: str, record: RecordMetadata) -> tuple[list[dict], str | None]:
    """Rows in deposit order, the first author marked; returns them and the first author's surname."""
    rows = []
    first_author = None
    marked = _first_author(record.contributors)
    for position, contributor in enumerate(record.contributors, start=1):
        is_first = contributor is marked
        if is_first:
            first_author = contributor.surname
        rows.append({
            "doi_key": key, "position": position, "kind": contributor.kind,
            "role": contributor.role[:64] if contributor.role else None,
            "sequence": contributor.sequence[:16] if contributor.sequence else None,
            "is_first_author": is_first, "surname": contributor.surname, "given_name": contributor.given_name,
            "surname_key": _name_key(contributor.surname) if contributor.kind == "person"
            else text_key(contributor.surname),
            "orcid": contributor.orcid[:255] if contributor.orcid else None})
    return rows, first_author


def _first_author(contributors: list[Contributor]) -> Contributor | None:
    """The author deposited with sequence "first", else the first author listed (one pass)."""
    first_listed = None
    for contributor in contributors:
        role = contributor.role  # an author: a person whose role is none, "author" or an investigator's
        if contributor.kind == "person" and (role is None or role == "author" or "investigator" in role):
            if contributor.sequence == "first":
                return contributor
            if first_listed is None:
                first_listed = contributor
    return first_listed


def prepare(record: RecordMetadata, source: LoadSource) -> PreparedRecord:
    """The rows for one record, and the warnings its metadata deserves."""
    key = doi_key(record.doi)
    warnings: list[str] = []
    if record.expects_title and not record.title:
        warnings.append("Record has no title: searches by title will not find it")
    contributors, first_author = contributor_rows(key, record)
    identifiers = identifier_rows(key, record.identifiers, warnings) if record.identifiers else []
    volume, issue, first_page, last_page = record.volume, record.issue, record.first_page, record.last_page
    publication_type, edition_number = record.publication_type, record.edition_number
    component_number = record.component_number
    if not (len(volume or "") <= _SHORTEST_LIMIT and len(issue or "") <= _SHORTEST_LIMIT
            and len(first_page or "") <= _SHORTEST_LIMIT and len(last_page or "") <= _SHORTEST_LIMIT
            and len(publication_type or "") <= _SHORTEST_LIMIT and len(edition_number or "") <= _SHORTEST_LIMIT
            and len(component_number or "") <= _SHORTEST_LIMIT):  # nearly always all fit: nothing to cut
        # The warnings come in this order: volume, issue, first page, type, last page, edition, component.
        volume, issue = _fit("volume", volume, warnings), _fit("issue", issue, warnings)
        first_page = _fit("first_page", first_page, warnings)
        publication_type = _fit("publication_type", publication_type, warnings)
        last_page = _fit("last_page", last_page, warnings)
        edition_number = _fit("edition_number", edition_number, warnings)
        component_number = _fit("component_number", component_number, warnings)
    row = {
        "doi_key": key, "doi": record.doi, "prefix": doi_prefix(record.doi)[:64], "url": record.url,
        "content_type": record.content_type[:64], "body_type": record.body_type[:64],
        "publication_type": publication_type,
        "title": record.title, "title_key": title_key(record.title),
        "journal_title": record.journal_title, "journal_title_key": _title_key(record.journal_title),
        "journal_abbrev": record.journal_abbrev, "journal_abbrev_key": _title_key(record.journal_abbrev),
        "series_title": record.series_title, "series_title_key": _title_key(record.series_title),
        "volume_title": record.volume_title, "volume_title_key": _title_key(record.volume_title),
        "volume": volume, "volume_key": _cut(_volume_key(volume)), "issue": issue,
        "issue_key": _cut(_volume_key(issue)), "first_page": first_page,
        "first_page_key": _cut(_page_key(first_page)), "last_page": last_page,
        "edition_number": edition_number,
        "component_number": component_number, "year": record.year,
        "publisher": record.publisher, "registrant": source.registrant, "depositor_login": source.login[:255],
        "first_author_surname": first_author, "first_author_key": _name_key(first_author),
        "version": _version_of(record.timestamp or "0"), "submission_id": source.submission_id,
        "batch_folder": source.folder,
    }
    return PreparedRecord(record.seq, key, row, contributors, identifiers, warnings)


def _cut(key: str | None) -> str | None:
    return key[:255] if key else key


def _newer_or_equal_replaces(statement):
    """ON CONFLICT: indexed metadata is replaced by a deposit at least as new (the handle store's rule)."""
    return statement.on_conflict_do_update(
        index_elements=[_RECORDS.c.doi_key],
        set_={name: statement.excluded[name] for name in _UPDATED_COLUMNS},
        where=_RECORDS.c.version <= statement.excluded.version,
    )


_RECORDS = MetadataRecord.__table__
_CONTRIBUTORS = MetadataContributor.__table__
_IDENTIFIERS = MetadataIdentifier.__table__
_LOCATORS = MetadataLocator.__table__
_JOURNAL_TITLES = MetadataJournalTitle.__table__


def _keep_existing(statement):
    """ON CONFLICT DO NOTHING: a title variant already learnt stays as it is."""
    return statement.on_conflict_do_nothing()
_UPDATED_COLUMNS = [c.name for c in _RECORDS.columns if c.name != "doi_key"]
_BY_KEY = itemgetter("doi_key")


class MetadataWriter:
    """Writes prepared records in one statement per table per chunk, newest deposit winning."""

    def write(self, session: Session, prepared: list[PreparedRecord]) -> dict[int, IndexResult]:
        """Index a chunk; data errors are isolated to the records that cause them."""
        prepared, results = _without_repeats(prepared)
        if not prepared:
            return results
        try:
            with session.begin_nested():
                results.update(self._write_chunk(session, prepared))
        except (DataError, IntegrityError):
            for one in prepared:
                try:
                    with session.begin_nested():
                        results.update(self._write_chunk(session, [one]))
                except (DataError, IntegrityError) as exc:
                    results[one.seq] = IndexResult(FAILURE, (
                        f"Metadata could not be stored ({failure_reason(exc)}); the DOI is registered and resolves, "
                        "but queries will not find it until it is deposited again",))
        return results

    def _write_chunk(self, session: Session, prepared: list[PreparedRecord]) -> dict[int, IndexResult]:
        # Core statements on the session's connection: the ORM's bulk machinery adds nothing here. The
        # stored versions are read first (one indexed look-up) so that new DOIs, the common case, cost a
        # plain multi-row insert; the load's lease makes it the only writer of these tables, and the
        # upsert's WHERE still refuses to let an older version overwrite a newer one.
        connection = session.connection()
        wanted = KeyList.of(session, [p.key for p in prepared])  # the chunk's keys as one bound value
        _resolving_urls(connection, prepared, wanted)
        stored = dict(connection.execute(select(_RECORDS.c.doi_key, _RECORDS.c.version)
                                         .select_from(wanted.table.source)
                                         .join(_RECORDS, _RECORDS.c.doi_key == wanted.key), wanted.parameters).all())
        newer = {p.key: stored[p.key] for p in prepared if p.key in stored and stored[p.key] > p.row["version"]}
        fresh = [p for p in prepared if p.key not in newer]
        if fresh:
            rows = sorted((p.row for p in fresh), key=_BY_KEY)  # one lock order
            bulk_insert(connection, _RECORDS, rows, constants={"indexed_at": func.current_timestamp()},
                        on_conflict=_newer_or_equal_replaces)
            replaced = [p.key for p in fresh if p.key in stored]
            if replaced:
                for table in (_CONTRIBUTORS, _IDENTIFIERS, _LOCATORS):
                    connection.execute(delete(table).where(table.c.doi_key.in_(replaced)))
            bulk_insert(connection, _CONTRIBUTORS, [row for p in fresh for row in p.contributors])
            bulk_insert(connection, _IDENTIFIERS, [row for p in fresh for row in p.identifiers])
            bulk_insert(connection, _LOCATORS, [row for p in fresh for row in p.locators])
            bulk_insert(connection, _JOURNAL_TITLES, journal_title_rows(fresh), on_conflict=_keep_existing)
        results = {}
        for p in prepared:
            if p.key in newer:
                results[p.seq] = IndexResult(WARNING, (
                    "Metadata not replaced: the index already holds this DOI from a newer deposit "
                    f"(timestamp {shown_version(newer[p.key])})",) + tuple(p.warnings))
            else:
                results[p.seq] = IndexResult(WARNING, tuple(p.warnings)) if p.warnings else INDEXED
        return results


def _resolving_urls(connection, prepared: list[PreparedRecord], wanted: KeyList) -> None:
    """Index the URL each DOI resolves to now, not the one its batch carried: a bulk URL update, a
    withdrawal or a reinstatement made after the deposit ran (but before this load) stays in force.

    Only DOIs the handle store holds are changed (a copy of batches/ loaded into an empty database keeps
    the batches' URLs). The URL values are read FOR SHARE on PostgreSQL, so a URL change committing
    meanwhile either lands before this read or waits for this chunk and then rewrites the index itself."""
    held = set(connection.execute(select(Handle.key).select_from(wanted.table.source)
                                  .join(Handle, Handle.key == wanted.key), wanted.parameters).scalars())
    if not held:
        return
    # Only held DOIs have values (handle_values refers to handles), so the chunk's keys select the same rows.
    urls = dict(connection.execute(select(HandleValue.handle_key, HandleValue.data).select_from(wanted.table.source)
                                   .join(HandleValue, HandleValue.handle_key == wanted.key)
                                   .where(HandleValue.idx == URL_INDEX).order_by(HandleValue.handle_key)
                                   .with_for_update(read=True, of=HandleValue), wanted.parameters).all())
    for p in prepared:
        if p.key in held:
            p.row["url"] = value_text(urls.get(p.key))


def index_urls(session: Session, urls: Sequence[tuple[str, str | None]]) -> None:
    """Point the indexed records of (key, url) pairs at their new URL (None: no URL, as pending
    publication), in the transaction that changes the handle's URL value. DOIs the index does not
    hold yet are skipped: their load reads the handle's URL then (``_resolving_urls``)."""
    if not urls:
        return
    statement = (update(_RECORDS).where(_RECORDS.c.doi_key == bindparam("key"))
                 .values(url=bindparam("new_url")).execution_options(synchronize_session=False))
    session.connection().execute(statement, [{"key": key, "new_url": url} for key, url in sorted(urls)])


def _without_repeats(prepared: list[PreparedRecord]) -> tuple[list[PreparedRecord], dict[int, IndexResult]]:
    """The first record of each DOI; later ones in the same chunk fail (one statement cannot write a row twice)."""
    seen: dict[str, int] = {}
    unique, results = [], {}
    for p in prepared:
        if p.key in seen:
            results[p.seq] = IndexResult(FAILURE, (f"Duplicate DOI in this batch (also record {seen[p.key]}); "
                                                   "only the first occurrence is indexed",))
        else:
            seen[p.key] = p.seq
            unique.append(p)
    return unique, results


def failure_reason(exc: BaseException) -> str:
    """One line saying why something failed: the driver's message when there is one."""
    original = getattr(exc, "orig", None) or exc
    return " ".join(str(original).split())[:300] or type(exc).__name__
