"""Query files: answered at once when small, else kept as a job the worker answers and mails.

A job is a submission of kind ``query``: the file is spooled and checked as
text before anything is acknowledged (a file that is not UTF-8, has NUL bytes,
an overlong line or too many lines is refused then, with the line that is
wrong), then moved into its folder under batches/ as ``query.txt``. The worker
answers it slice by slice; each chunk's answer lines are committed with the
submission's progress, fenced by the lease (``fenced_progress``), so a lost
lease never writes twice and a restart resumes after the last chunk. When all
lines are answered, ``result.txt`` is written beside the query file and the
email carrying it is enqueued in the same transaction that completes the job.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator, Mapping, Sequence

from jinja2 import Environment
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from agency.accounts import Registrant, registrant_by_id
from agency.deposit.batch_files import (
    QUERY_RESULT_FILE, fsync_dir, submission_path,
)
from agency.config import Settings
from agency.db import Database
from agency.deposit.intake import DepositIntake, SpooledFile
from agency.notify.callbacks import QUERY_RESULT, enqueue_callback
from agency.notify.outbox import enqueue_mail, recipients_for
from agency.models import RecordResult, Submission
from agency.models.submissions import COMPLETED
from agency.models.types import utcnow
from agency.operations import metrics
from agency.query.matcher import QueryMatcher
from agency.query.piped_format import (
    AMBIGUOUS, MALFORMED, NO_MATCH, REJECTED, QueryLine, QueryTextError, answer_line, iter_query_lines,
    outcome_code, parse_lines,
)
from agency.query.xml_format import read_query_batch, result_document, status_counts
from agency.runtime.worker import fenced_progress, run_kept_source_slice

QUERY_FILE = "query.txt"
QUERY_KIND = "query"
METADATA_QUERY, DOI_QUERY, API_QUERY = "doQueryUpload", "doDOIQueryUpload", "api"
FOUND, BLANK = "found", "blank"
RESULT_TEXT = "mail/query_result.txt.j2"
RESULT_HTML = "mail/query_result.html.j2"


def result_mail_key(submission_id: int) -> str:
    return f"query-result-{submission_id}"


@dataclass(frozen=True)
class LineCounts:
    """How the lines of a file were answered."""

    lines: int = 0
    found: int = 0
    ambiguous: int = 0
    no_match: int = 0
    malformed: int = 0
    rejected: int = 0

    @classmethod
    def of(cls, codes: Sequence[str]) -> "LineCounts":
        return cls.from_tally(Counter(codes))

    @classmethod
    def from_tally(cls, tally: Mapping[str, int]) -> "LineCounts":
        """From how many lines got each code."""
        return cls(lines=sum(tally.values()) - tally.get(BLANK, 0), found=tally.get(FOUND, 0),
                   ambiguous=tally.get(AMBIGUOUS, 0), no_match=tally.get(NO_MATCH, 0),
                   malformed=tally.get(MALFORMED, 0), rejected=tally.get(REJECTED, 0))

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Answered:
    """The answer to a small query text: its lines and their counts."""

    lines: list[str]
    counts: LineCounts

    @property
    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)


def answer_lines(matcher: QueryMatcher, parsed: Sequence[QueryLine]) -> tuple[list[str], list[str]]:
    """Answer lines and status codes for parsed lines, one each, in order."""
    outcomes = matcher.answer(parsed)
    return ([answer_line(line, outcome) for line, outcome in zip(parsed, outcomes)],
            [outcome_code(line, outcome) for line, outcome in zip(parsed, outcomes)])


class QueryIntake:
    """Receives query texts: answers small ones, turns larger ones into jobs."""

    def __init__(self, settings: Settings, db: Database, deposits: DepositIntake, matcher: QueryMatcher,
                 on_accepted=None) -> None:
        self.settings = settings
        self.db = db
        self.deposits = deposits
        self.matcher = matcher
        self.on_accepted = on_accepted

    def answer_batch(self, data: bytes) -> tuple[bytes, dict[str, int]]:
        """An XML ``query_batch`` answered at once as a ``crossref_result`` (batches are bounded, see
        ``xml_format``); raises ``QueryTextError`` when the batch cannot be read."""
        batch = read_query_batch(data, self.settings.schema_dir, self.settings.query_xml_max_queries,
                                 self.settings.query_xml_max_bytes)
        outcomes = self.matcher.answer(batch.lines)
        return result_document(batch, outcomes), status_counts(batch, outcomes)

    def answer_now(self, lines: Sequence[str]) -> Answered:
        """Answer lines already read and checked (see ``piped_format.read_query_text``)."""
        with metrics.QUERY_SECONDS.labels("sync").time():
            answers, codes = answer_lines(self.matcher, list(parse_lines(lines)))
        return Answered(answers, LineCounts.of(codes))

    def receive(self, registrant: Registrant, source: IO[bytes], file_name: str, operation: str,
                always_job: bool = False) -> Answered | Submission:
        """Spool and check a query file; answer it when small (and allowed), else queue it as a job.

        Raises ``QueryTextError`` (file not acceptable) or ``IntakeError`` (too
        large, empty, too many pending): nothing is kept then.
        """
        spooled = self.deposits.spool(source)
        try:
            line_count = self._check(spooled.path)
            if not always_job and line_count <= self.settings.query_sync_lines:
                with open(spooled.path, "rb") as fh:
                    lines = list(self._lines(fh))
                return self.answer_now(lines)
            self.deposits.check_capacity(registrant)
            submission = self._record(registrant, spooled, file_name, operation, line_count)
        finally:
            spooled.path.unlink(missing_ok=True)
        if self.on_accepted:
            self.on_accepted(submission.id)
        return submission

    def _lines(self, fh: IO[bytes]) -> Iterator[str]:
        return iter_query_lines(fh, self.settings.query_max_lines, self.settings.query_max_line_chars)

    def _check(self, path: Path) -> int:
        """The file's line count, after checking every line; raises QueryTextError."""
        count = queries = 0
        with open(path, "rb") as fh:
            for line in self._lines(fh):
                count += 1
                queries += bool(line.strip())
        if not queries:
            raise QueryTextError("No query: the file is empty or has only blank lines.")
        return count

    def _record(self, registrant: Registrant, spooled: SpooledFile, file_name: str, operation: str,
                line_count: int) -> Submission:
        return self.deposits.record_text_file(registrant, spooled, QUERY_KIND, operation, file_name, QUERY_FILE)


@dataclass
class _OpenFile:
    lines: Iterator[str]
    done: int


@dataclass
class QueryRunner:
    """The worker's runner for ``query`` submissions."""

    settings: Settings
    db: Database
    matcher: QueryMatcher
    templates: Environment
    _open: dict[int, _OpenFile] = field(default_factory=dict)

    def run_slice(self, submission_id: int, owner: str) -> bool:
        def open_source() -> _OpenFile:
            with self.db.sessions() as session:
                return self._source(session.get(Submission, submission_id))

        return run_kept_source_slice(self.settings, self._open, submission_id, open_source,
                                     lambda source, chunk: self._answer_chunk(submission_id, owner, source, chunk),
                                     lambda: self._finish(submission_id, owner))

    def _source(self, submission: Submission) -> _OpenFile:
        opened = self._open.get(submission.id)
        if opened is not None and opened.done == submission.records_done:
            return opened
        path = submission_path(self.settings.batch_dir, submission.storage_path, QUERY_FILE)
        lines = self._read(path, submission.records_done)
        opened = self._open[submission.id] = _OpenFile(lines, submission.records_done)
        return opened

    def _read(self, path: Path, skip: int) -> Iterator[str]:
        with open(path, "rb") as fh:
            lines = iter_query_lines(fh, self.settings.query_max_lines, self.settings.query_max_line_chars)
            yield from itertools.islice(lines, skip, None)

    def _answer_chunk(self, submission_id: int, owner: str, source: _OpenFile, chunk: list[str]) -> None:
        parsed = list(parse_lines(chunk, start=source.done + 1))
        answers, codes = answer_lines(self.matcher, parsed)
        with self.db.transaction() as session:
            submission = session.get(Submission, submission_id)
            session.execute(insert(RecordResult), [
                {"submission_id": submission_id, "seq": line.number, "doi": _found_doi(line, answer, code),
                 "status": code, "message": answer, "outcome": code}
                for line, answer, code in zip(parsed, answers, codes)])
            counts = LineCounts.of(codes)
            fenced_progress(
                session, submission, owner, self.settings,
                records_done=submission.records_done + len(chunk),
                record_count=submission.record_count + counts.lines,
                success_count=submission.success_count + counts.found,
                warning_count=submission.warning_count + counts.ambiguous,
                failure_count=submission.failure_count + counts.lines - counts.found - counts.ambiguous)
        source.done += len(chunk)

    def _finish(self, submission_id: int, owner: str) -> None:
        self._open.pop(submission_id, None)
        with self.db.sessions() as session:
            submission = session.get(Submission, submission_id)
            path = submission_path(self.settings.batch_dir, submission.storage_path, QUERY_RESULT_FILE)
            write_result(session, submission_id, path)
        with self.db.transaction() as session:
            submission = session.get(Submission, submission_id)
            fenced_progress(session, submission, owner, self.settings, status=COMPLETED, completed_at=utcnow(),
                            lease_owner=None, lease_expires_at=None)
            registrant = registrant_by_id(session, submission.account_id)
            session.refresh(submission)
            self._enqueue_result_mail(session, submission, registrant)
            enqueue_callback(session, self.settings, account_id=submission.account_id, event=QUERY_RESULT,
                             key=f"query-result-{submission.id}", internal_id=submission.id,
                             external_id=submission.file_name,
                             retrieve_path=f"/v1/queries/{submission.id}/result")
            received_at = submission.received_at
        metrics.QUERY_SECONDS.labels("job").observe(max(0.0, (utcnow() - received_at).total_seconds()))

    def _enqueue_result_mail(self, session: Session, submission: Submission, registrant: Registrant) -> None:
        context = {"submission": submission, "registrant": registrant,
                   "counts": counts_of(session, submission.id),
                   "received": submission.received_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                   "result_url": f"{self.settings.base_url.rstrip('/')}/v1/queries/{submission.id}/result",
                   "attachment_name": result_attachment_name(submission)}
        enqueue_mail(session, key=result_mail_key(submission.id),
                     recipients=recipients_for(None, registrant.email),
                     subject=f"Query results: {submission.file_name} (submission {submission.id})",
                     text=self.templates.get_template(RESULT_TEXT).render(**context),
                     html=self.templates.get_template(RESULT_HTML).render(**context),
                     attachment_path=f"{submission.storage_path}/{QUERY_RESULT_FILE}",
                     attachment_name=context["attachment_name"], attachment_type="text/plain")


def result_attachment_name(submission: Submission) -> str:
    return f"submission-{submission.id}-result.txt"


def _found_doi(line: QueryLine, answer: str, code: str) -> str:
    """The DOI of a found line: in its DOI field (a NOTE may follow it), or last on a DOI look-up's answer."""
    if code != FOUND:
        return ""
    fields = answer.split("|")
    slot = line.doi_slot
    return (fields[slot] if slot is not None and slot < len(fields) else fields[-1])[:2048]


def write_result(session: Session, submission_id: int, path: Path) -> None:
    """Write result.txt from the committed answers, in line order, durably (fsync, atomic rename)."""
    tmp = path.with_name(path.name + ".part")
    rows = session.execute(select(RecordResult.message).where(RecordResult.submission_id == submission_id)
                           .order_by(RecordResult.seq).execution_options(yield_per=2000)).scalars()
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        for message in rows:
            fh.write(message + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def counts_of(session: Session, submission_id: int) -> LineCounts:
    """Counted by the database: a finished job may have 100,000 lines."""
    tally = session.execute(select(RecordResult.status, func.count()).where(RecordResult.submission_id == submission_id)
                            .group_by(RecordResult.status))
    return LineCounts.from_tally(dict(tally.all()))
