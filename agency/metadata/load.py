"""The metadata database (MDDB) load: completed batches, read from their files under batches/.

The handoff is the files, as in the Handbook: each submission folder
(``<login>/<yyyy>/<mm>/<id>/``) holds the batch as received (``batch.xml``) and
its deposit log (``log.xml``). A load finds every folder whose log says
``completed`` and that is not loaded yet (``mddb_loads``, keyed by the folder
and the log's sha256, so a copy of batches/ loads into an empty database and
loading again changes nothing), indexes the metadata of each record the log
reports as registered, writes ``combined.xml`` beside the log and enqueues its
email in the transaction that records the load.

One load runs at a time across processes (the ``mddb-load`` lease in
``job_locks``, renewed with every chunk it commits). A folder that cannot be
loaded (missing or unreadable files) is recorded as failed with the reason,
reported, and tried again by the next load.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterator, NamedTuple

from jinja2 import Environment
from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from agency.deposit.batch_files import BATCH_FILE, COMBINED_FILE, LOG_FILE, QUERY_RESULT_FILE
from agency.metadata.combined_diagnostic import (
    CombinedCounts, CombinedDiagnostics, CombinedRow, xml_text, xml_texts,
)
from agency.config import Settings
from agency.db import Database
from agency.handles.store import FAILURE, SUCCESS, WARNING
from agency.notify.callbacks import COMBINED_DIAGNOSTIC, enqueue_callback
from agency.notify.outbox import enqueue_mail, recipients_for
from agency.metadata.extraction import BatchHead, BatchMetadataReader, RecordMetadata
from agency.metadata.index import (
    SKIPPED, IndexResult, LoadSource, MetadataWriter, PreparedRecord, failure_reason, prepare,
)
from agency.metadata.record_count import indexed_records
from agency.metadata.resources import ResourcePart, ResourcePartReader, is_resource_batch, write_parts
from agency.models import Account, MddbLoad, Submission
from agency.models.submissions import COMPLETED
from agency.models.submissions import REFUSED as REFUSED_SUBMISSION
from agency.models.types import utcnow
from agency.runtime.scheduling import (
    MDDB_JOB, MDDB_PROMPT_JOB, JobLease, LeaseLost, last_run, record_finish, record_start,
)
from agency.deposit.validation import LOCAL_NAMES, hardened_parser, local_name

log = logging.getLogger(__name__)

LOADED, REFUSED, FAILED, WAITING = "loaded", "refused", "failed", "waiting"
REGISTERED = (SUCCESS, WARNING)
INDEXED, INDEX_FAILED = "indexed", "failed"  # submissions.index_status
PENDING_PER_RUN = 200  # completed deposits one prompt load takes on (the next run takes the rest)


class FolderProblem(Exception):
    """A batch folder that cannot be loaded; the message says why, for the operator."""


class LogEntry(NamedTuple):
    """One record_diagnostic (a tuple: a log has one per record, built at C speed)."""

    doi: str
    status: str
    message: str


@dataclass
class DepositLog:
    status: str
    submission_id: int | None
    batch_id: str | None
    refused: bool
    entries: list[LogEntry]


def read_log(data: bytes) -> DepositLog:
    """A ``doi_batch_diagnostic`` document: its status and one entry per record, in order."""
    try:
        root = etree.fromstring(data, hardened_parser())
    except etree.XMLSyntaxError as exc:
        raise FolderProblem(f"log.xml is not well-formed XML ({exc})") from None
    if local_name(root.tag) != "doi_batch_diagnostic":
        raise FolderProblem(f"log.xml is not a deposit log (root element <{local_name(root.tag)}>)")
    entries, submission_id, batch_id, refused = [], None, None, False
    local = LOCAL_NAMES
    for child in root[:]:
        name = local[child.tag]
        if name == "record_diagnostic":
            status = child.get("status") or ""
            if status not in (SUCCESS, WARNING, FAILURE):
                raise FolderProblem(f"log.xml record {len(entries) + 1} has an unknown status {status!r}")
            entries.append(_entry(child, status))
        elif name == "submission_id":
            submission_id = int(child.text) if (child.text or "").strip().isdigit() else None
        elif name == "batch_id":
            batch_id = (child.text or "").strip() or None
        elif name == "refusal":
            refused = True
    return DepositLog(root.get("status") or "", submission_id, batch_id, refused, entries)


def _entry(record_diagnostic, status: str) -> LogEntry:
    """The record's DOI and message (the first of each), read in one pass over its few children."""
    doi = message = None
    for child in record_diagnostic[:]:
        name = LOCAL_NAMES[child.tag]
        if name == "doi":
            if doi is None:
                doi = (child.text or "").strip()
        elif name == "msg" and message is None:
            message = (child.text or "").strip()
    return LogEntry(doi or "", status, message or "")


@dataclass(frozen=True)
class BatchFolder:
    """A submission folder under batches/: ``<login>/<yyyy>/<mm>/<id>``."""

    folder: str
    login: str
    number: int | None  # the submission id the folder is named after
    path: Path

    @property
    def log_path(self) -> Path:
        return self.path / LOG_FILE

    @property
    def batch_path(self) -> Path:
        return self.path / BATCH_FILE

    @property
    def combined_path(self) -> Path:
        return self.path / COMBINED_FILE

    @classmethod
    def of(cls, batch_dir: Path, folder: str) -> "BatchFolder":
        parts = folder.split("/")
        number = int(parts[-1]) if parts[-1].isdigit() else None
        return cls(folder, parts[0], number, batch_dir / folder)


def scan_batch_dir(batch_dir: Path) -> Iterator[BatchFolder]:
    """Every folder shaped like a submission folder, in submission order (the folder's number)."""
    found = []
    for login in _subdirs(batch_dir):
        for year in _subdirs(login.path):
            if not (len(year.name) == 4 and year.name.isdigit()):
                continue
            for month in _subdirs(year.path):
                if not (len(month.name) == 2 and month.name.isdigit()):
                    continue
                for folder in _subdirs(month.path):
                    found.append(BatchFolder(f"{login.name}/{year.name}/{month.name}/{folder.name}", login.name,
                                             int(folder.name) if folder.name.isdigit() else None,
                                             Path(folder.path)))
    found.sort(key=lambda f: (f.number is None, f.number or 0, f.folder))
    return iter(found)


def _subdirs(path: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as entries:
            return sorted((e for e in entries if e.is_dir(follow_symlinks=False)), key=lambda e: e.name)
    except OSError:
        return []


@dataclass
class FolderReport:
    """What one load did with one folder."""

    folder: str
    outcome: str  # loaded | refused | failed | waiting
    submission_id: int | None = None
    batch_id: str | None = None
    records: int = 0
    registered: int = 0
    indexed: int = 0
    warnings: int = 0
    failures: int = 0
    error: str | None = None
    recipients: list[str] = field(default_factory=list)

    def line(self) -> str:
        if self.outcome == FAILED:
            return f"FAILED  {self.folder}: {self.error}"
        if self.outcome == LOADED:
            mail = f"; mailed to {', '.join(self.recipients)}" if self.recipients else ""
            return (f"loaded  {self.folder}: {self.indexed} of {self.registered} registered records indexed "
                    f"({self.records} in the batch, {self.warnings} warnings, {self.failures} failures){mail}")
        return f"{self.outcome:7} {self.folder}" + (f": {self.error}" if self.error else "")


@dataclass
class LoadReport:
    skipped_because: str | None = None
    folders: list[FolderReport] = field(default_factory=list)

    @property
    def loaded(self) -> list[FolderReport]:
        return [f for f in self.folders if f.outcome == LOADED]

    @property
    def failed(self) -> list[FolderReport]:
        return [f for f in self.folders if f.outcome == FAILED]

    def summary(self) -> str:
        if self.skipped_because:
            return f"skipped: {self.skipped_because}"
        indexed = sum(f.indexed for f in self.loaded)
        return (f"{len(self.loaded)} batch(es) loaded ({indexed} records indexed), "
                f"{len(self.failed)} failed, "
                f"{sum(1 for f in self.folders if f.outcome == REFUSED)} refused batch(es) noted, "
                f"{sum(1 for f in self.folders if f.outcome == WAITING)} still being processed")


@dataclass
class MddbStatus:
    records: int
    loads: dict[str, int]
    failed: list[MddbLoad]
    lease_holder: str | None
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_status: str | None
    last_summary: str | None


@dataclass(frozen=True)
class _Known:
    status: str
    sha256: str
    size: int
    mtime_ns: int


class MddbLoader:
    """Loads completed batches from their files into the metadata database."""

    def __init__(self, settings: Settings, db: Database, templates: Environment) -> None:
        self.settings = settings
        self.db = db
        self.combined = CombinedDiagnostics(templates)
        self.writer = MetadataWriter()

    # -- entry points -----------------------------------------------------------
    def run(self, mail: bool | None = None) -> LoadReport:
        """Load everything not loaded yet; skips (and says so) when another load holds the lease."""
        return self._leased(MDDB_JOB, self._load_all, mail)

    def run_pending(self, mail: bool | None = None) -> LoadReport:
        """Load the folders of deposits completed and not indexed yet, found in the database instead
        of by scanning batches/: cheap enough for the scheduler to run every few seconds, so that a
        deposit's metadata and combined diagnostic follow it within seconds. ``run`` stays the
        catch-up for everything else (failed folders, copies of batches/, missing logs)."""
        with self.db.sessions() as session:
            folders = list(session.scalars(
                select(Submission.storage_path)
                .where(Submission.index_status == "pending", Submission.kind == "deposit",
                       Submission.status == COMPLETED)
                .order_by(Submission.id).limit(PENDING_PER_RUN)))
        if not folders:
            return LoadReport()
        return self._leased(MDDB_PROMPT_JOB, lambda lease, mail_on: self._load_listed(lease, folders, mail_on), mail)

    def _leased(self, job_id: str, load, mail: bool | None) -> LoadReport:
        """Run ``load(lease, mail)`` holding the load lease, recording the run as ``job_id``."""
        lease = JobLease(self.db, MDDB_JOB, self.settings.lease_seconds)
        if not lease.acquire():
            holder, until = lease.holder()
            return LoadReport(skipped_because=f"another load is running ({holder}, lease until {until:%H:%M:%S} UTC)"
                              if holder and until else "another load is running")
        record_start(self.db, job_id)
        try:
            report = load(lease, self.settings.mddb_mail if mail is None else mail)
        except BaseException as exc:
            record_finish(self.db, job_id, "failed", f"{type(exc).__name__}: {exc}")
            raise
        finally:
            lease.release()
        record_finish(self.db, job_id, "failed" if report.failed else "ok", report.summary())
        for folder in report.failed:
            log.error("metadata load: %s", folder.line())
        return report

    def status(self) -> MddbStatus:
        with self.db.sessions() as session:
            records = indexed_records(session)
            loads = dict(session.execute(select(MddbLoad.status, func.count()).group_by(MddbLoad.status)).all())
            failed = list(session.scalars(select(MddbLoad).where(MddbLoad.status == FAILED)
                                          .order_by(MddbLoad.folder)))
        holder, _until = JobLease(self.db, MDDB_JOB, self.settings.lease_seconds).holder()
        run = last_run(self.db, MDDB_JOB)
        return MddbStatus(records, loads, failed, holder, run.last_started_at if run else None,
                          run.last_finished_at if run else None, run.last_status if run else None,
                          run.last_summary if run else None)

    # -- finding work -------------------------------------------------------------
    def _load_all(self, lease: JobLease, mail: bool) -> LoadReport:
        known = self._known_loads()
        report = LoadReport()
        on_disk: set[str] = set()
        candidates: list[tuple[BatchFolder, os.stat_result]] = []
        for folder in scan_batch_dir(self.settings.batch_dir):
            try:
                stat = folder.log_path.stat()
            except OSError:
                continue  # still being processed, refused before a log, or a query: see _unlogged below
            if (folder.path / QUERY_RESULT_FILE).exists():
                continue
            on_disk.add(folder.folder)
            seen = known.get(folder.folder)
            if seen and seen.status in (LOADED, REFUSED) and (seen.size, seen.mtime_ns) == (
                    stat.st_size, stat.st_mtime_ns):
                continue
            candidates.append((folder, stat))
        for folder in self._unlogged(on_disk, known):
            report.folders.append(self._fail(lease, folder, None, None,
                                             "log.xml is missing: the submission is completed but its folder has "
                                             "no deposit log, so its records cannot be indexed"))
        for folder, stat in candidates:
            outcome = self._load_folder(lease, folder, stat, known.get(folder.folder), mail)
            if outcome is not None:
                report.folders.append(outcome)
        return report

    def _load_listed(self, lease: JobLease, folders: list[str], mail: bool) -> LoadReport:
        """Load these folders (those whose log is not there yet are left to the catch-up)."""
        known = self._known_loads(folders)
        report = LoadReport()
        for name in folders:
            folder = BatchFolder.of(self.settings.batch_dir, name)
            try:
                stat = folder.log_path.stat()
            except OSError:
                continue
            outcome = self._load_folder(lease, folder, stat, known.get(name), mail)
            if outcome is not None:
                report.folders.append(outcome)
        return report

    def _known_loads(self, folders: list[str] | None = None) -> dict[str, _Known]:
        """What was loaded before, of every folder or of these."""
        query = select(MddbLoad.folder, MddbLoad.status, MddbLoad.log_sha256, MddbLoad.log_size, MddbLoad.log_mtime_ns)
        if folders is not None:
            query = query.where(MddbLoad.folder.in_(folders))
        with self.db.sessions() as session:
            return {row.folder: _Known(row.status, row.log_sha256, row.log_size, row.log_mtime_ns)
                    for row in session.execute(query)}

    def _unlogged(self, on_disk: set[str], known: dict[str, _Known]) -> list[BatchFolder]:
        """Completed deposits waiting for indexing whose log is not on disk (else mark them indexed)."""
        missing = []
        with self.db.transaction() as session:
            waiting = session.scalars(select(Submission).where(
                Submission.kind == "deposit", Submission.status == COMPLETED,
                Submission.index_status.in_(("pending", INDEX_FAILED))))
            for submission in waiting:
                folder = submission.storage_path
                seen = known.get(folder)
                if folder in on_disk:
                    if seen and seen.status == LOADED:  # loaded before the worker marked it completed
                        submission.index_status, submission.indexed_at = INDEXED, utcnow()
                    continue
                if seen and seen.status == LOADED:
                    submission.index_status, submission.indexed_at = INDEXED, utcnow()
                    continue
                missing.append(BatchFolder.of(self.settings.batch_dir, folder))
        return missing

    # -- one folder -------------------------------------------------------------------
    def _load_folder(self, lease: JobLease, folder: BatchFolder, stat: os.stat_result, seen: _Known | None,
                     mail: bool) -> FolderReport | None:
        try:
            data = folder.log_path.read_bytes()
        except OSError as exc:
            return self._fail(lease, folder, None, stat, f"log.xml cannot be read ({exc.strerror or exc})")
        sha = hashlib.sha256(data).hexdigest()
        if seen and seen.sha256 == sha and seen.status in (LOADED, REFUSED):
            self._touch(folder, sha, stat)  # same log, new mtime (e.g. copied): nothing to load again
            return None
        state = self._row_state(folder)
        if state == "other":
            return None  # a query job's folder: nothing to index
        if state == "unfinished":
            return FolderReport(folder.folder, WAITING, folder.number)
        try:
            deposit_log = read_log(data)
            if deposit_log.status != "completed":
                return FolderReport(folder.folder, WAITING, folder.number, error=f"log status {deposit_log.status}")
            if deposit_log.refused:
                return self._note_refused(lease, folder, deposit_log, sha, stat)
            if not folder.batch_path.is_file():
                raise FolderProblem("batch.xml is missing: the deposit log is there but the batch it reports on "
                                    "is not, so its metadata cannot be indexed")
            return self._index_folder(lease, folder, deposit_log, sha, stat, mail)
        except FolderProblem as exc:
            return self._fail(lease, folder, sha, stat, str(exc))
        except (etree.XMLSyntaxError, OSError) as exc:
            return self._fail(lease, folder, sha, stat, f"batch.xml cannot be read ({failure_reason(exc)}); records "
                                                        "indexed before the error stay indexed")
        except LeaseLost:
            raise
        except SQLAlchemyError as exc:
            log.exception("metadata load of %s failed on a database error", folder.folder)
            return self._fail(lease, folder, sha, stat, f"database error ({failure_reason(exc)}); the next load retries")

    def _row_state(self, folder: BatchFolder) -> str:
        """"files" when no submission row speaks for the folder (a copy of batches/: the files decide),
        else "finished" (completed or refused), "unfinished" or "other" (not a deposit)."""
        if folder.number is None:
            return "files"
        with self.db.sessions() as session:
            submission = session.get(Submission, folder.number)
            if submission is None or submission.storage_path != folder.folder:
                return "files"
            if submission.kind != "deposit":
                return "other"
            return "finished" if submission.status in (COMPLETED, REFUSED_SUBMISSION) else "unfinished"

    def _index_folder(self, lease: JobLease, folder: BatchFolder, deposit_log: DepositLog, sha: str,
                      stat: os.stat_result, mail: bool) -> FolderReport:
        if is_resource_batch(folder.batch_path):
            return self._index_resources(lease, folder, deposit_log, sha, stat, mail)
        entries = deposit_log.entries
        submission_id = deposit_log.submission_id if deposit_log.submission_id is not None else folder.number
        results: dict[int, IndexResult] = {}
        unlogged: list[tuple[int, str]] = []
        chunk: list[PreparedRecord] = []
        limit = self.settings.mddb_chunk_records
        reader = BatchMetadataReader(folder.batch_path)
        source: LoadSource | None = None
        try:
            for record in reader:
                if source is None:
                    source = LoadSource(folder.folder, folder.login, submission_id, reader.head.registrant)
                entry = entries[record.seq - 1] if record.seq <= len(entries) else None
                if entry is None:
                    unlogged.append((record.seq, record.doi))
                    results[record.seq] = IndexResult(FAILURE, (
                        "System error: the deposit log has no result for this record, so it was not indexed",))
                elif entry.doi != record.doi:
                    results[record.seq] = IndexResult(FAILURE, (
                        f"System error: the batch file does not match its deposit log (record {record.seq} is "
                        f"{record.doi!r} in the batch, {entry.doi!r} in the log); not indexed",))
                elif entry.status not in REGISTERED:
                    results[record.seq] = IndexResult(SKIPPED, ("Not indexed: the deposit of this record failed",))
                else:
                    prepared = self._prepare(record, source, results)
                    if prepared is not None:
                        if len(chunk) >= limit:  # a full chunk is written once a record follows it, so that
                            full, chunk = chunk, []  # the last one commits with the load's record
                            self._write_chunk(lease, full, results)
                        chunk.append(prepared)
        except Exception:
            if len(chunk) >= limit:  # read in full before the batch file broke: indexed, as it always was
                self._write_chunk(lease, chunk, results)
            raise
        for seq in range(reader.record_count + 1, len(entries) + 1):
            registered = entries[seq - 1].status in REGISTERED
            results[seq] = IndexResult(FAILURE, (
                "System error: this record was not found in the batch file; not indexed",)) if registered \
                else IndexResult(SKIPPED, ("Not indexed: the deposit of this record failed",))
        return self._finish(lease, folder, deposit_log, submission_id, reader.head, chunk, results, unlogged, sha,
                            stat, mail)

    def _index_resources(self, lease: JobLease, folder: BatchFolder, deposit_log: DepositLog, sha: str,
                         stat: os.stat_result, mail: bool) -> FolderReport:
        """A resource-only batch: each part the deposit applied replaces the DOI's part of that kind."""
        entries = deposit_log.entries
        submission_id = deposit_log.submission_id if deposit_log.submission_id is not None else folder.number
        results: dict[int, IndexResult] = {}
        reader = ResourcePartReader(folder.batch_path)
        chunk: list[ResourcePart] = []
        for part in reader:
            entry = entries[part.seq - 1] if part.seq <= len(entries) else None
            if entry is None or entry.doi != part.doi:
                results[part.seq] = IndexResult(FAILURE, ("System error: the batch file does not match its "
                                                          "deposit log; not indexed",))
            elif entry.status not in REGISTERED:
                results[part.seq] = IndexResult(SKIPPED, ("Not indexed: the deposit of this record failed",))
            else:
                chunk.append(part)
                results[part.seq] = IndexResult(SUCCESS)
            if len(chunk) >= self.settings.mddb_chunk_records:
                with self.db.transaction() as session:
                    lease.renew(session)
                    write_parts(session, chunk, submission_id, folder.folder)
                chunk = []
        if chunk:
            with self.db.transaction() as session:
                lease.renew(session)
                write_parts(session, chunk, submission_id, folder.folder)
        return self._finish(lease, folder, deposit_log, submission_id, reader.head, [], results, [], sha, stat,
                            mail)

    @staticmethod
    def _prepare(record: RecordMetadata, source: LoadSource,
                 results: dict[int, IndexResult]) -> PreparedRecord | None:
        try:
            return prepare(record, source)
        except Exception as exc:  # a metadata shape nobody foresaw: this record fails, the batch goes on
            log.exception("metadata of record %s (%s) could not be prepared", record.seq, record.doi)
            results[record.seq] = IndexResult(FAILURE, (f"Metadata problem: {failure_reason(exc)}; not indexed",))
            return None

    def _write_chunk(self, lease: JobLease, chunk: list[PreparedRecord], results: dict[int, IndexResult]) -> None:
        if not chunk:
            return
        with self.db.transaction() as session:
            lease.renew(session)
            results.update(self.writer.write(session, chunk))

    def _finish(self, lease: JobLease, folder: BatchFolder, deposit_log: DepositLog, submission_id: int | None,
                head: BatchHead, last_chunk: list[PreparedRecord], results: dict[int, IndexResult],
                unlogged: list[tuple[int, str]], sha: str, stat: os.stat_result, mail: bool) -> FolderReport:
        """The last chunk, combined.xml, the load's record and its email: one transaction (one commit)."""
        with self.db.transaction() as session:
            lease.renew(session)
            if last_chunk:
                results.update(self.writer.write(session, last_chunk))
            report, counts, indexed_at = self._write_combined(folder, deposit_log, submission_id, head, results,
                                                              unlogged)
            self._save(session, folder, sha, stat, LOADED, report, None)
            self._mark_submission(session, folder, INDEXED, indexed_at)
            if mail:
                report.recipients = self._enqueue_mail(session, folder, sha, head, counts, submission_id,
                                                       report.batch_id)
                self._enqueue_callback(session, folder, sha, submission_id, report.batch_id)
        return report

    def _write_combined(self, folder: BatchFolder, deposit_log: DepositLog, submission_id: int | None,
                        head: BatchHead, results: dict[int, IndexResult], unlogged: list[tuple[int, str]]
                        ) -> tuple[FolderReport, CombinedCounts, datetime]:
        missing = IndexResult(FAILURE, ("System error: no indexing result",))
        rows = [CombinedRow(seq, xml_text(entry.doi), entry.status, xml_text(entry.message), result.status,
                            xml_texts(result.messages))
                for seq, entry, result in ((seq, entry, results.get(seq, missing))
                                           for seq, entry in enumerate(deposit_log.entries, start=1))]
        rows += [CombinedRow(seq, xml_text(doi), FAILURE, "No result for this record in the deposit log",
                             results[seq].status, xml_texts(results[seq].messages))
                 for seq, doi in unlogged]
        counts = CombinedCounts()
        for row in rows:
            counts.add(row)
        indexed_at = utcnow()
        batch_id = deposit_log.batch_id or head.batch_id
        self.combined.write(folder.combined_path, rows, counts, submission_id, batch_id, indexed_at)
        report = FolderReport(folder.folder, LOADED, submission_id, batch_id, counts.record_count,
                              counts.registered_count, counts.indexed_count, counts.index_warning_count,
                              counts.index_failure_count)
        return report, counts, indexed_at

    def _enqueue_mail(self, session: Session, folder: BatchFolder, sha: str, head: BatchHead,
                      counts: CombinedCounts, submission_id: int | None, batch_id: str | None) -> list[str]:
        account_email = session.scalar(select(Account.email).where(Account.login == folder.login))
        recipients = recipients_for(head.email, account_email)
        attachment_name = f"submission-{submission_id}-combined.xml" if submission_id is not None else COMBINED_FILE
        content = self.combined.mail(counts, submission_id, batch_id, folder.login, folder.folder, attachment_name)
        enqueue_mail(session, key=f"combined-{folder.folder}-{sha[:16]}", recipients=recipients,
                     subject=content.subject, text=content.text, html=content.html,
                     attachment_path=f"{folder.folder}/{COMBINED_FILE}", attachment_name=attachment_name,
                     attachment_type="application/xml")
        if not recipients:
            log.warning("metadata load: no usable address for %s (batch head %r, account %r); the message is "
                        "kept in the outbox as undeliverable", folder.folder, head.email, account_email)
        return recipients

    def _enqueue_callback(self, session: Session, folder: BatchFolder, sha: str, submission_id: int | None,
                          batch_id: str | None) -> None:
        """Tell the account its combined diagnostic is ready (when it registered a callback)."""
        account_id = session.scalar(select(Account.id).where(Account.login == folder.login))
        if account_id is None or submission_id is None:
            return
        enqueue_callback(session, self.settings, account_id=account_id, event=COMBINED_DIAGNOSTIC,
                         key=f"combined-{folder.folder}-{sha[:16]}", internal_id=submission_id,
                         external_id=batch_id, retrieve_path=f"/v1/deposits/{submission_id}/combined")

    # -- bookkeeping ----------------------------------------------------------------------
    def _note_refused(self, lease: JobLease, folder: BatchFolder, deposit_log: DepositLog, sha: str,
                      stat: os.stat_result) -> FolderReport:
        """A refused batch has nothing to index (its depositor was told at refusal); remember it."""
        report = FolderReport(folder.folder, REFUSED, deposit_log.submission_id, deposit_log.batch_id)
        with self.db.transaction() as session:
            lease.renew(session)
            self._save(session, folder, sha, stat, REFUSED, report, None)
        return report

    def _fail(self, lease: JobLease, folder: BatchFolder, sha: str | None, stat: os.stat_result | None,
              error: str) -> FolderReport:
        report = FolderReport(folder.folder, FAILED, folder.number, error=error)
        with self.db.transaction() as session:
            lease.renew(session)
            self._save(session, folder, sha or "", stat, FAILED, report, error)
            self._mark_submission(session, folder, INDEX_FAILED, utcnow())
        return report

    def _touch(self, folder: BatchFolder, sha: str, stat: os.stat_result) -> None:
        with self.db.transaction() as session:
            row = session.get(MddbLoad, folder.folder)
            if row is not None and row.log_sha256 == sha:
                row.log_size, row.log_mtime_ns = stat.st_size, stat.st_mtime_ns
            self._mark_submission(session, folder, INDEXED, utcnow(), only_pending=True)

    @staticmethod
    def _save(session: Session, folder: BatchFolder, sha: str, stat: os.stat_result | None, status: str,
              report: FolderReport, error: str | None) -> None:
        row = session.get(MddbLoad, folder.folder)
        if row is None:
            row = MddbLoad(folder=folder.folder, attempts=0)
            session.add(row)
        row.log_sha256, row.status, row.error = sha, status, error
        row.log_size = stat.st_size if stat else 0
        row.log_mtime_ns = stat.st_mtime_ns if stat else 0
        row.submission_id, row.batch_id = report.submission_id, (report.batch_id or "")[:255] or None
        row.record_count, row.registered_count, row.indexed_count = report.records, report.registered, report.indexed
        row.warning_count, row.failure_count = report.warnings, report.failures
        row.attempts = (row.attempts or 0) + 1
        row.loaded_at = utcnow()

    @staticmethod
    def _mark_submission(session: Session, folder: BatchFolder, index_status: str, when: datetime,
                         only_pending: bool = False) -> None:
        if folder.number is None:
            return
        submission = session.get(Submission, folder.number)
        if submission is None or submission.storage_path != folder.folder or submission.kind != "deposit":
            return
        if only_pending and (submission.status != COMPLETED or submission.index_status != "pending"):
            return
        submission.index_status, submission.indexed_at = index_status, when
