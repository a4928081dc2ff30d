"""Bulk URL updates: a UTF-8 file of ``DOI<TAB>URL`` lines (Crossref's ``doTransferDOIsUpload``).

A submission of kind ``url-update``: the file is spooled and checked as text
(UTF-8, a BOM and CRLF allowed, line count and length bounded) before anything
is acknowledged, then kept as ``urls.txt`` in its folder under batches/. The
worker applies it chunk by chunk; each line's result (Success, or Failure with
the reason) is committed with the URL writes it caused (the handle's URL value
and the metadata index's URL), fenced by the lease,
so a restarted worker resumes after the last chunk. A bad line fails alone: no
tab, a bad DOI or URL, a DOI that is unknown, another account's, an alias,
withdrawn, or given twice in the file. At the end the log (the deposit log's
format) and ``result.txt`` are written beside the file, and the mail carrying
the log is enqueued, with one audit event, in the transaction that completes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator

from jinja2 import Environment
from sqlalchemy import select
from sqlalchemy.orm import Session

from agency.accounts import Registrant, registrant_by_id
from agency.admin.audit import Actor, record_event
from agency.config import Settings
from agency.db import Database, bulk_insert
from agency.deposit.batch_files import (
    LOG_FILE, QUERY_RESULT_FILE, fsync_dir, submission_path,
)
from agency.deposit.intake import DepositIntake
from agency.deposit.logs import BatchCounts, BatchLogs
from agency.handles.doi_syntax import MAX_DOI_LENGTH, doi_key, doi_problem, url_problem
from agency.handles.store import FAILURE, SUCCESS, RecordDiagnostic, handle_states, replace_urls
from agency.metadata.index import index_urls
from agency.models import RecordResult, Submission
from agency.models.submissions import COMPLETED
from agency.models.types import utcnow
from agency.notify.outbox import enqueue_mail, recipients_for
from agency.query.piped_format import QueryTextError, iter_query_lines
from agency.runtime.worker import fenced_progress, run_kept_source_slice

URL_UPDATE_KIND = "url-update"
URL_FILE = "urls.txt"
SERVLET_OPERATION, API_OPERATION = "doTransferDOIsUpload", "api"
MAIL_TEXT = "mail/url_update.txt.j2"


class UrlFileError(QueryTextError):
    """The file cannot be read as DOI<TAB>URL lines (status 400, or 413 when too long)."""


@dataclass(frozen=True)
class UrlLine:
    seq: int  # the line number in the file
    text: str


def iter_url_lines(source: IO[bytes], settings: Settings, skip: int = 0) -> Iterator[UrlLine]:
    """The file's non-blank lines with their numbers, after line ``skip``; raises QueryTextError."""
    lines = iter_query_lines(source, settings.url_update_max_lines, settings.url_update_max_line_chars)
    for number, text in enumerate(lines, start=1):
        if number > skip and text.strip():
            yield UrlLine(number, text)


def update_of(line: UrlLine) -> tuple[str, str] | str:
    """(doi, url) from a line, or why the line is not one."""
    if "\t" not in line.text:
        return "No tab: a line is DOI<TAB>URL"
    doi, url = (part.strip() for part in line.text.split("\t", 1))
    problem = doi_problem(doi)
    if problem:
        return f"Invalid DOI: {problem}"
    problem = url_problem(url)
    if problem:
        return f"Invalid URL: {problem}"
    return doi, url


class UrlUpdateIntake:
    """Receives URL files: checked as text, recorded as ``url-update`` submissions for the worker."""

    def __init__(self, settings: Settings, db: Database, deposits: DepositIntake, on_accepted=None) -> None:
        self.settings = settings
        self.db = db
        self.deposits = deposits
        self.on_accepted = on_accepted

    def receive(self, registrant: Registrant, source: IO[bytes], file_name: str, operation: str) -> Submission:
        """Raises QueryTextError (not a URL file) or IntakeError (too large, empty, too many pending)."""
        self.deposits.check_capacity(registrant)
        spooled = self.deposits.spool(source)
        try:
            with open(spooled.path, "rb") as fh:  # every line is read: encoding and limits hold for the file
                if not sum(1 for _ in iter_url_lines(fh, self.settings)):
                    raise UrlFileError("No update: the file is empty or has only blank lines.")
            submission = self.deposits.record_text_file(registrant, spooled, URL_UPDATE_KIND, operation,
                                                        file_name, URL_FILE)
        finally:
            spooled.path.unlink(missing_ok=True)
        if self.on_accepted:
            self.on_accepted(submission.id)
        return submission


@dataclass
class _OpenFile:
    lines: Iterator[UrlLine]
    done: int  # lines of the file read so far (blank ones too): the resume point
    seen: dict[str, int]  # DOI key -> line of its first occurrence


@dataclass
class UrlUpdateRunner:
    """The worker's runner for ``url-update`` submissions."""

    settings: Settings
    db: Database
    logs: BatchLogs
    templates: Environment
    _open: dict[int, _OpenFile] = field(default_factory=dict)

    def run_slice(self, submission_id: int, owner: str) -> bool:
        def open_source() -> _OpenFile:
            with self.db.sessions() as session:
                return self._source(session, session.get(Submission, submission_id))

        return run_kept_source_slice(self.settings, self._open, submission_id, open_source,
                                     lambda source, chunk: self._apply_chunk(submission_id, owner, source, chunk),
                                     lambda: self._finish(submission_id, owner))

    def _source(self, session: Session, submission: Submission) -> _OpenFile:
        opened = self._open.get(submission.id)
        if opened is not None and opened.done == submission.records_done:
            return opened
        seen = {doi_key(doi): seq for doi, seq in session.execute(
            select(RecordResult.doi, RecordResult.seq).where(RecordResult.submission_id == submission.id,
                                                            RecordResult.outcome.in_(("updated", "unchanged"))))}
        path = submission_path(self.settings.batch_dir, submission.storage_path, URL_FILE)
        opened = self._open[submission.id] = _OpenFile(self._read(path, submission.records_done),
                                                       submission.records_done, seen)
        return opened

    def _read(self, path: Path, skip: int) -> Iterator[UrlLine]:
        with open(path, "rb") as fh:
            yield from iter_url_lines(fh, self.settings, skip)

    def _apply_chunk(self, submission_id: int, owner: str, source: _OpenFile, chunk: list[UrlLine]) -> None:
        with self.db.transaction() as session:
            submission = session.get(Submission, submission_id)
            diagnostics = self._apply(session, submission.account_id, source.seen, chunk)
            bulk_insert(session.connection(), RecordResult.__table__, [
                {"seq": d.seq, "doi": d.doi[:MAX_DOI_LENGTH], "status": d.status, "message": d.message,
                 "outcome": d.outcome} for d in diagnostics], constants={"submission_id": submission_id})
            failures = sum(d.status == FAILURE for d in diagnostics)
            fenced_progress(session, submission, owner, self.settings,
                            records_done=chunk[-1].seq, record_count=submission.record_count + len(chunk),
                            success_count=submission.success_count + len(chunk) - failures,
                            failure_count=submission.failure_count + failures)
        source.done = chunk[-1].seq

    def _apply(self, session: Session, account_id: int, seen: dict[str, int],
               chunk: list[UrlLine]) -> list[RecordDiagnostic]:
        parsed = {line.seq: update_of(line) for line in chunk}
        keys = [doi_key(p[0]) for p in parsed.values() if isinstance(p, tuple)]
        states = handle_states(session, keys)
        out: list[RecordDiagnostic] = []
        writes: dict[str, str] = {}
        for line in chunk:
            update = parsed[line.seq]
            if isinstance(update, str):
                out.append(RecordDiagnostic(line.seq, line.text.split("\t", 1)[0].strip(), FAILURE, update,
                                            "invalid"))
                continue
            doi, url = update
            key = doi_key(doi)
            state = states.get(key)
            refusal = _refusal(doi, state, account_id, seen.get(key))
            if refusal:
                out.append(RecordDiagnostic(line.seq, doi, FAILURE, refusal[1], refusal[0]))
                continue
            seen[key] = line.seq
            writes[key] = url
            out.append(RecordDiagnostic(line.seq, doi, SUCCESS, f"URL updated to {url}", "updated"))
        if writes:
            replace_urls(session, list(writes.items()), self.settings.handle_ttl)
            index_urls(session, list(writes.items()))  # piped queries and metadata pages answer the new URL
        return out

    def _finish(self, submission_id: int, owner: str) -> None:
        self._open.pop(submission_id, None)
        with self.db.sessions() as session:
            submission = session.get(Submission, submission_id)
            folder = self.settings.batch_dir / submission.storage_path
            rows = session.execute(select(RecordResult.seq, RecordResult.doi, RecordResult.status,
                                          RecordResult.message, RecordResult.outcome)
                                   .where(RecordResult.submission_id == submission_id)
                                   .order_by(RecordResult.seq).execution_options(yield_per=2000))
            self.logs.write(folder / LOG_FILE, submission, (RecordDiagnostic(*row) for row in rows),
                            BatchCounts.of(submission))
            _write_result(session, submission_id, folder / QUERY_RESULT_FILE)
        with self.db.transaction() as session:
            submission = session.get(Submission, submission_id)
            fenced_progress(session, submission, owner, self.settings, status=COMPLETED, completed_at=utcnow(),
                            lease_owner=None, lease_expires_at=None)
            registrant = registrant_by_id(session, submission.account_id)
            session.refresh(submission)
            record_event(session, Actor.account(registrant.login), "urls.update", f"submission:{submission.id}",
                         account_id=registrant.id, after={"lines": submission.record_count,
                                                          "updated": submission.success_count,
                                                          "failed": submission.failure_count})
            self._enqueue_mail(session, submission, registrant)

    def _enqueue_mail(self, session: Session, submission: Submission, registrant: Registrant) -> None:
        base = self.settings.base_url.rstrip("/")
        text = self.templates.get_template(MAIL_TEXT).render(
            submission=submission, registrant=registrant, received=f"{submission.received_at:%Y-%m-%d %H:%M:%S} UTC",
            status_url=f"{base}/v1/url-updates/{submission.id}", result_url=f"{base}/v1/url-updates/{submission.id}/result")
        enqueue_mail(session, key=f"url-update-{submission.id}", recipients=recipients_for(None, registrant.email),
                     subject=f"URL updates: {submission.file_name} (submission {submission.id})", text=text,
                     attachment_path=f"{submission.storage_path}/{LOG_FILE}",
                     attachment_name=f"submission-{submission.id}-log.xml", attachment_type="application/xml")


def _refusal(doi: str, state, account_id: int, first: int | None) -> tuple[str, str] | None:
    if first is not None:
        return "duplicate", f"Duplicate DOI in this file: {doi} was already given on line {first}; only that line is applied"
    if state is None:
        return "unknown", f"DOI not found: {doi} is not registered"
    if state.account_id != account_id:
        return "owner", f"User not allowed to update the URL of {doi}: the DOI belongs to another account"
    if state.alias_of:
        return "aliased", f"{doi} is an alias of {state.alias_of}: update the URL of {state.alias_of} instead"
    if state.withdrawn:
        return "withdrawn", f"{doi} is withdrawn: its URL points at the tombstone page until it is reinstated"
    return None


def _write_result(session: Session, submission_id: int, path: Path) -> None:
    """result.txt: one line per line of the file, LINE<TAB>DOI<TAB>Success|Failure<TAB>message, in order."""
    tmp = path.with_name(path.name + ".part")
    rows = session.execute(select(RecordResult.seq, RecordResult.doi, RecordResult.status, RecordResult.message)
                           .where(RecordResult.submission_id == submission_id).order_by(RecordResult.seq)
                           .execution_options(yield_per=2000))
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        for seq, doi, status, message in rows:
            fh.write(f"{seq}\t{doi}\t{status}\t{message}\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
