"""Moving a prefix between agencies (DOI Handbook 9.1.6): export to a self-describing archive, import it.

The archive is a zip file::

    manifest.json        format, version, prefix, counts, and every other entry's size and sha256
    handles.jsonl        one handle per line: name, version, revision, times, every stored value
    metadata.jsonl       the metadata database's records of the prefix (contributors, identifiers, locators)
    titles.jsonl         the title records its DOIs use (title, kind, ISSNs / ISBNs)
    citations.jsonl      the citation keys of its journal articles ("Added with conflict" continues)
    submissions.jsonl    the submissions that deposited its DOIs
    batches/<folder>/... their original batch files, logs and combined diagnostics

Import checks everything before writing anything: the zip's own structure and CRCs,
entry names (no absolute paths, no ``..``, no duplicates), the entry count and
unpacked size against ``AGENCY_ARCHIVE_MAX_ENTRIES`` / ``AGENCY_ARCHIVE_MAX_BYTES``,
every checksum in the manifest, every line of every record file, duplicated
handles, and that neither the prefix nor a title's identifiers belong to another
account here. Then one transaction writes it; a handle or metadata record is
written only when the archive's version is newer than the stored one, so
versions are kept (timestamp precedence continues) and importing twice changes
nothing. Batch files are kept under ``<data dir>/imported/<prefix>/``, outside
``batches/`` so the metadata load does not index or mail them again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agency.accounts import AccountError
from agency.admin.accounts import Change, account_by_login, audited_change
from agency.admin.audit import Actor
from agency.admin.prefixes import normalized_prefix
from agency.config import Settings
from agency.deposit.batch_files import BATCH_FILE, COMBINED_FILE, LOG_FILE
from agency.handles.doi_syntax import doi_key
from agency.models import (Account, CitationKey, Handle, HandleValue, MetadataContributor, MetadataIdentifier,
                           MetadataLocator, MetadataRecord, Prefix, RecordResult, Submission, TitleIdentifier,
                           TitleRecord)

FORMAT, FORMAT_VERSION = "agency-prefix-archive", 1
MANIFEST = "manifest.json"
RECORD_FILES = ("handles.jsonl", "metadata.jsonl", "titles.jsonl", "citations.jsonl", "submissions.jsonl")
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
MAX_LINE_BYTES = 64 * 1024 * 1024
_CHUNK = 2000


class ArchiveError(ValueError):
    """An archive that cannot be exported or imported; nothing was written."""


@dataclass
class ImportReport:
    prefix: str
    handles_written: int = 0
    handles_kept: int = 0
    metadata_written: int = 0
    titles_created: int = 0
    files: int = 0
    changes: list[Change] = field(default_factory=list)

    def line(self) -> str:
        return (f"imported {self.prefix}: {self.handles_written} handle(s) written, {self.handles_kept} already "
                f"as new or newer here; {self.metadata_written} metadata record(s); {self.titles_created} title "
                f"record(s) created; {self.files} batch file(s) kept"
                + "".join(f"\n{c.line()}" for c in self.changes))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _columns(row, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {}
    for column in row.__table__.columns:
        if column.key in skip:
            continue
        value = getattr(row, column.key)
        out[column.key] = _iso(value) if isinstance(value, datetime) else value
    return out


# ---------------------------------------------------------------------------
# Export

def export_prefix(session: Session, settings: Settings, prefix: str, target: Path) -> dict[str, int]:
    """Write the archive of ``prefix`` to ``target`` (atomically: a temporary file renamed at the end)."""
    prefix = normalized_prefix(prefix)
    row = session.get(Prefix, prefix)
    if row is None:
        raise ArchiveError(f"prefix {prefix} is not served here")
    target = Path(target)
    handle_keys = list(session.scalars(select(Handle.key).where(Handle.prefix == prefix).order_by(Handle.key)))
    counts: dict[str, int] = {}
    fd, temporary = tempfile.mkstemp(prefix=".export-", suffix=".zip", dir=target.parent or Path("."))
    os.close(fd)
    try:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            entries: dict[str, dict] = {}

            def put_lines(name: str, lines: Iterator[dict]) -> None:
                digest, size, count = hashlib.sha256(), 0, 0
                with archive.open(name, "w", force_zip64=True) as out:
                    for item in lines:
                        data = (json.dumps(item, ensure_ascii=False, sort_keys=True) + "\n").encode()
                        digest.update(data)
                        size += len(data)
                        count += 1
                        out.write(data)
                entries[name] = {"sha256": digest.hexdigest(), "bytes": size}
                counts[name.removesuffix(".jsonl")] = count

            put_lines("handles.jsonl", _handle_lines(session, handle_keys))
            put_lines("metadata.jsonl", _metadata_lines(session, prefix))
            put_lines("titles.jsonl", _title_lines(session, prefix))
            put_lines("citations.jsonl", (_columns(c) for c in session.scalars(
                select(CitationKey).where(CitationKey.doi_key.startswith(prefix + "/")).order_by(CitationKey.doi_key))))
            submissions = _submissions(session, prefix)
            put_lines("submissions.jsonl", (_columns(s, skip=("lease_owner", "lease_expires_at")) for s in submissions))
            files = 0
            for submission in submissions:
                for name in (BATCH_FILE, LOG_FILE, COMBINED_FILE):
                    source = settings.batch_dir / submission.storage_path / name
                    if source.is_file():
                        entry = f"batches/{submission.storage_path}/{name}"
                        archive.write(source, entry)
                        entries[entry] = {"sha256": _file_sha256(source), "bytes": source.stat().st_size}
                        files += 1
            counts["batch_files"] = files
            manifest = {"format": FORMAT, "version": FORMAT_VERSION, "prefix": prefix,
                        "exported_from": settings.base_url, "counts": counts, "entries": entries}
            archive.writestr(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return counts


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _handle_lines(session: Session, keys: list[str]) -> Iterator[dict]:
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start:start + _CHUNK]
        values: dict[str, list[dict]] = {}
        for value in session.scalars(select(HandleValue).where(HandleValue.handle_key.in_(chunk))
                                     .order_by(HandleValue.handle_key, HandleValue.idx)):
            values.setdefault(value.handle_key, []).append(_value_line(value))
        for handle in session.scalars(select(Handle).where(Handle.key.in_(chunk)).order_by(Handle.key)):
            yield {**_columns(handle, skip=("account_id", "submission_id")), "values": values.get(handle.key, [])}


def _value_line(value: HandleValue) -> dict:
    """A handle value for the archive: its data (bytes, as the protocol carries it) base64-encoded."""
    line = _columns(value, skip=("handle_key", "data"))
    return {**line, "data": base64.b64encode(value.data).decode("ascii"), "data_encoding": "base64"}


def _value_data(line: dict) -> bytes:
    """A value's data from the archive (archives written before values were bytes hold plain text)."""
    if line.get("data_encoding") == "base64":
        return base64.b64decode(str(line["data"]), validate=True)
    return str(line["data"]).encode("utf-8")


_PROTOCOL_FIELDS = {"ttl_type": int, "refs": str, "admin_read": bool, "admin_write": bool, "pub_read": bool,
                    "pub_write": bool}


def _metadata_lines(session: Session, prefix: str) -> Iterator[dict]:
    keys = list(session.scalars(select(MetadataRecord.doi_key).where(MetadataRecord.prefix == prefix)
                                .order_by(MetadataRecord.doi_key)))
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start:start + _CHUNK]
        children: dict[str, dict[str, list]] = {}
        for model, name in ((MetadataContributor, "contributors"), (MetadataIdentifier, "identifiers"),
                            (MetadataLocator, "locators")):
            for child in session.scalars(select(model).where(model.doi_key.in_(chunk))):
                children.setdefault(child.doi_key, {}).setdefault(name, []).append(_columns(child, skip=("doi_key",)))
        for record in session.scalars(select(MetadataRecord).where(MetadataRecord.doi_key.in_(chunk))
                                      .order_by(MetadataRecord.doi_key)):
            kids = children.get(record.doi_key, {})
            yield {**_columns(record, skip=("submission_id",)),
                   **{name: sorted(kids.get(name, []), key=lambda c: json.dumps(c, sort_keys=True))
                      for name in ("contributors", "identifiers", "locators")}}


def _title_lines(session: Session, prefix: str) -> Iterator[dict]:
    used = set(session.scalars(select(MetadataIdentifier.value).join(
        MetadataRecord, MetadataRecord.doi_key == MetadataIdentifier.doi_key).where(MetadataRecord.prefix == prefix)))
    used.update(key.split("|", 1)[0] for key in session.scalars(
        select(CitationKey.key).where(CitationKey.doi_key.startswith(prefix + "/"))))
    title_ids = set(session.scalars(select(TitleIdentifier.title_id).where(TitleIdentifier.value.in_(sorted(used)))))
    for record in session.scalars(select(TitleRecord).where(TitleRecord.id.in_(sorted(title_ids)))
                                  .order_by(TitleRecord.id)):
        identifiers = session.execute(select(TitleIdentifier.kind, TitleIdentifier.value).where(
            TitleIdentifier.title_id == record.id).order_by(TitleIdentifier.kind, TitleIdentifier.value)).all()
        yield {"kind": record.kind, "title": record.title, "created_at": _iso(record.created_at),
               "identifiers": [[kind, value] for kind, value in identifiers]}


def _submissions(session: Session, prefix: str) -> list[Submission]:
    ids = set(session.scalars(select(Handle.submission_id).where(Handle.prefix == prefix).distinct()))
    ids.update(session.scalars(select(RecordResult.submission_id).where(
        func.lower(RecordResult.doi).startswith(prefix + "/")).distinct()))
    return list(session.scalars(select(Submission).where(Submission.id.in_(sorted(ids)), Submission.kind == "deposit")
                                .order_by(Submission.id)))


# ---------------------------------------------------------------------------
# Import: read and check everything first

@dataclass
class _Checked:
    prefix: str
    handles: list[dict]
    metadata: list[dict]
    titles: list[dict]
    citations: list[dict]
    batch_entries: list[str]


def _safe_name(name: str) -> bool:
    path = PurePosixPath(name)
    return (bool(name) and "\\" not in name and "\0" not in name and not path.is_absolute()
            and ".." not in path.parts and ":" not in path.parts[0] and not name.endswith("/"))


def _read_archive(path: Path, settings: Settings) -> tuple[zipfile.ZipFile, dict]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"{path} is not a readable archive (corrupt or truncated?): {exc}") from None
    infos = archive.infolist()
    if len(infos) > settings.archive_max_entries:
        raise ArchiveError(f"the archive has {len(infos)} entries; the limit is {settings.archive_max_entries} "
                           "(AGENCY_ARCHIVE_MAX_ENTRIES)")
    total = sum(info.file_size for info in infos)
    if total > settings.archive_max_bytes:
        raise ArchiveError(f"the archive unpacks to {total} bytes; the limit is {settings.archive_max_bytes} "
                           "(AGENCY_ARCHIVE_MAX_BYTES)")
    names = [info.filename for info in infos]
    for name in names:
        if not _safe_name(name):
            raise ArchiveError(f"entry {name!r} would escape the import folder (absolute path, '..' or '\\'): "
                               "refused")
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise ArchiveError(f"entry {duplicate!r} appears twice in the archive")
    if MANIFEST not in names:
        raise ArchiveError("the archive has no manifest.json: it is not an agency prefix archive")
    if archive.getinfo(MANIFEST).file_size > MAX_MANIFEST_BYTES:
        raise ArchiveError("manifest.json is too large")
    try:
        manifest = json.loads(archive.read(MANIFEST))
    except (ValueError, zipfile.BadZipFile) as exc:
        raise ArchiveError(f"manifest.json cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
        raise ArchiveError(f"manifest.json does not describe a {FORMAT} version {FORMAT_VERSION}")
    entries = manifest.get("entries")
    if not isinstance(entries, dict):
        raise ArchiveError("manifest.json lists no entries")
    listed, present = set(entries), set(names) - {MANIFEST}
    if listed != present:
        extra, missing = sorted(present - listed), sorted(listed - present)
        raise ArchiveError("the archive does not match its manifest: "
                           + (f"not listed: {', '.join(extra[:5])} " if extra else "")
                           + (f"missing: {', '.join(missing[:5])}" if missing else ""))
    for name in sorted(listed):
        _check_entry(archive, name, entries[name])
    return archive, manifest


def _check_entry(archive: zipfile.ZipFile, name: str, expected: Any) -> None:
    if not isinstance(expected, dict):
        raise ArchiveError(f"manifest entry {name!r} is malformed")
    digest, size = hashlib.sha256(), 0
    try:
        with archive.open(name) as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ArchiveError(f"entry {name!r} is corrupt or truncated: {exc}") from None
    if size != expected.get("bytes") or digest.hexdigest() != expected.get("sha256"):
        raise ArchiveError(f"entry {name!r} does not match its checksum in the manifest: refused")


def _lines(archive: zipfile.ZipFile, name: str) -> list[dict]:
    out = []
    with archive.open(name) as fh:
        for number, raw in enumerate(fh, 1):
            if len(raw) > MAX_LINE_BYTES:
                raise ArchiveError(f"{name} line {number} is longer than {MAX_LINE_BYTES} bytes")
            try:
                item = json.loads(raw)
            except ValueError as exc:
                raise ArchiveError(f"{name} line {number} is not JSON: {exc}") from None
            if not isinstance(item, dict):
                raise ArchiveError(f"{name} line {number} is not a JSON object")
            out.append(item)
    return out


def _check_records(archive: zipfile.ZipFile, manifest: dict) -> _Checked:
    try:
        prefix = normalized_prefix(str(manifest.get("prefix", "")))
    except AccountError as exc:
        raise ArchiveError(f"manifest.json: {exc}") from None
    for name in RECORD_FILES:
        if name not in manifest["entries"]:
            raise ArchiveError(f"the archive has no {name}")
    handles = _lines(archive, "handles.jsonl")
    seen: set[str] = set()
    for number, h in enumerate(handles, 1):
        try:
            name, version, values = str(h["name"]), str(h["version"]), h["values"]
            ok = (isinstance(values, list) and h["key"] == doi_key(name) and h["prefix"] == prefix
                  and name.lower().startswith(prefix + "/") and version.isdigit() and len(version) == 19
                  and all(isinstance(v, dict) and {"idx", "type", "data", "ttl", "timestamp"} <= set(v)
                          for v in values))
        except (KeyError, TypeError):
            ok = False
        if not ok:
            raise ArchiveError(f"handles.jsonl line {number} is not a handle of prefix {prefix}")
        if h["key"] in seen:
            raise ArchiveError(f"handles.jsonl line {number}: handle {h['name']} appears twice: refused")
        seen.add(h["key"])
    metadata = _lines(archive, "metadata.jsonl")
    for number, m in enumerate(metadata, 1):
        if m.get("prefix") != prefix or not isinstance(m.get("doi_key"), str):
            raise ArchiveError(f"metadata.jsonl line {number} is not a metadata record of prefix {prefix}")
    titles = _lines(archive, "titles.jsonl")
    for number, t in enumerate(titles, 1):
        if not isinstance(t.get("identifiers"), list) or not isinstance(t.get("title"), str):
            raise ArchiveError(f"titles.jsonl line {number} is not a title record")
    citations = _lines(archive, "citations.jsonl")
    batch_entries = sorted(n for n in manifest["entries"] if n.startswith("batches/"))
    unknown = sorted(set(manifest["entries"]) - set(RECORD_FILES) - set(batch_entries))
    if unknown:
        raise ArchiveError(f"the archive has entries this agency does not know: {', '.join(unknown[:5])}")
    return _Checked(prefix, handles, metadata, titles, citations, batch_entries)


def _check_ownership(session: Session, checked: _Checked, account: Account) -> None:
    row = session.get(Prefix, checked.prefix)
    if row is not None and row.account_id != account.id:
        holder = session.get(Account, row.account_id).login
        raise ArchiveError(f"prefix {checked.prefix} is served here already, for account {holder!r}: refused")
    for title in checked.titles:
        for kind, value in title["identifiers"]:
            owner = session.execute(select(TitleRecord.account_id).join(
                TitleIdentifier, TitleIdentifier.title_id == TitleRecord.id).where(
                TitleIdentifier.kind == kind, TitleIdentifier.value == value)).scalar()
            if owner is not None and owner != account.id:
                raise ArchiveError(f"{kind.upper()} {value} ({title['title']}) is owned by another account here: "
                                   "refused (transfer the title first)")


# ---------------------------------------------------------------------------
# Import: write

def import_prefix(session: Session, settings: Settings, actor: Actor, path: Path, login: str) -> ImportReport:
    """Check the whole archive, then write it in the caller's transaction for account ``login``."""
    archive, manifest = _read_archive(Path(path), settings)
    with archive:
        checked = _check_records(archive, manifest)
        account = account_by_login(session, login)
        if account.disabled_at is not None:
            raise ArchiveError(f"account {login!r} is disabled")
        _check_ownership(session, checked, account)
        report = ImportReport(checked.prefix)
        if session.get(Prefix, checked.prefix) is None:
            session.add(Prefix(prefix=checked.prefix, account_id=account.id))
            session.flush()
            report.changes.append(audited_change(session, actor, "prefix.add", f"prefix:{checked.prefix}",
                                                 account_id=account.id, before=None,
                                                 after={"owner": login, "from_archive": str(path)}, reason=None))
        _write_handles(session, checked.handles, account.id, report)
        _write_metadata(session, checked.metadata, report)
        _write_titles(session, checked.titles, account.id, report)
        _write_citations(session, checked.citations)
        report.files = _keep_batch_files(archive, checked, settings)
        report.changes.append(audited_change(
            session, actor, "prefix.import", f"prefix:{checked.prefix}", account_id=account.id, before=None,
            after={"handles_written": report.handles_written, "handles_kept": report.handles_kept,
                   "metadata_written": report.metadata_written, "titles_created": report.titles_created},
            reason=f"archive {Path(path).name}"))
    return report


def _stored_versions(session: Session, model, key_column, keys: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(keys), _CHUNK):
        found.update(session.execute(select(key_column, model.version).where(
            key_column.in_(keys[start:start + _CHUNK]))).all())
    return found


def _write_handles(session: Session, handles: list[dict], account_id: int, report: ImportReport) -> None:
    stored = _stored_versions(session, Handle, Handle.key, [h["key"] for h in handles])
    for h in handles:
        if h["key"] in stored and stored[h["key"]] >= h["version"]:
            report.handles_kept += 1
            continue
        existing = session.get(Handle, h["key"])
        row = existing or Handle(key=h["key"])
        row.name, row.prefix, row.version, row.revision = h["name"], h["prefix"], h["version"], int(h["revision"])
        row.account_id, row.submission_id = account_id, 0
        row.created_at, row.updated_at = _when(h["created_at"]), _when(h["updated_at"])
        if existing is None:
            session.add(row)
        session.flush()
        session.execute(HandleValue.__table__.delete().where(HandleValue.handle_key == h["key"]))
        for v in h["values"]:
            session.add(HandleValue(handle_key=h["key"], idx=int(v["idx"]), type=str(v["type"]), data=_value_data(v),
                                    ttl=int(v["ttl"]), timestamp=_when(v["timestamp"]),
                                    **{name: kind(v[name]) for name, kind in _PROTOCOL_FIELDS.items() if name in v}))
        report.handles_written += 1
    session.flush()


def _write_metadata(session: Session, records: list[dict], report: ImportReport) -> None:
    stored = _stored_versions(session, MetadataRecord, MetadataRecord.doi_key, [m["doi_key"] for m in records])
    columns = {c.key for c in MetadataRecord.__table__.columns} - {"submission_id"}
    for m in records:
        if m["doi_key"] in stored and stored[m["doi_key"]] >= m["version"]:
            continue
        existing = session.get(MetadataRecord, m["doi_key"])
        if existing is not None:
            session.delete(existing)
            session.flush()
        values = {k: (_when(v) if k == "indexed_at" else v) for k, v in m.items() if k in columns}
        session.add(MetadataRecord(**values))
        session.flush()  # the children's foreign key needs the record first
        for model, name in ((MetadataContributor, "contributors"), (MetadataIdentifier, "identifiers"),
                            (MetadataLocator, "locators")):
            for child in m.get(name, []):
                session.add(model(doi_key=m["doi_key"], **child))
        report.metadata_written += 1
    session.flush()


def _write_titles(session: Session, titles: list[dict], account_id: int, report: ImportReport) -> None:
    for t in titles:
        identifiers = [(str(kind), str(value)) for kind, value in t["identifiers"]]
        existing = [i for i in identifiers if session.get(TitleIdentifier, i) is not None]
        if len(existing) == len(identifiers):
            continue
        title_id = session.get(TitleIdentifier, existing[0]).title_id if existing else None
        if title_id is None:
            record = TitleRecord(kind=str(t.get("kind", "journal")), title=t["title"], account_id=account_id,
                                 created_at=_when(t.get("created_at")))
            session.add(record)
            session.flush()
            title_id = record.id
            report.titles_created += 1
        for kind, value in identifiers:
            if (kind, value) not in existing:
                session.add(TitleIdentifier(kind=kind, value=value, title_id=title_id))
        session.flush()


def _write_citations(session: Session, citations: list[dict]) -> None:
    for c in citations:
        if session.get(CitationKey, c["doi_key"]) is None:
            session.add(CitationKey(doi_key=c["doi_key"], key=c["key"], doi=c["doi"]))
    session.flush()


def _keep_batch_files(archive: zipfile.ZipFile, checked: _Checked, settings: Settings) -> int:
    root = (settings.data_dir / "imported" / checked.prefix).resolve()
    for name in checked.batch_entries:
        target = (root / name).resolve()
        if root not in target.parents:
            raise ArchiveError(f"entry {name!r} would escape the import folder: refused")
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(name) as source, open(target, "wb") as out:
            for block in iter(lambda: source.read(1 << 20), b""):
                out.write(block)
    return len(checked.batch_entries)
