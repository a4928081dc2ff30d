"""The deposit runner: registers a claimed deposit's records chunk by chunk, then writes its log.

The generic worker (``runtime.worker``) claims the submission and hands each
slice to ``DepositRunner.run_slice``; every chunk is committed with its results
and the submission's progress, fenced by the lease.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Iterator, Protocol, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from agency.accounts import Registrant, registrant_by_id
from agency.config import Settings
from agency.db import Database, bulk_insert
from agency.deposit.batch_files import LOG_FILE, submission_path
from agency.deposit.extraction import MAX_COLLECTED_RECORDS, DepositRecord, iter_records
from agency.deposit.logs import BatchCounts, BatchLogs
from agency.deposit.resources import ResourceRegistration, iter_resource_records
from agency.deposit.validation import is_resource_namespace
from agency.handles.doi_syntax import MAX_DOI_LENGTH, doi_key
from agency.handles.store import FAILURE, SUCCESS, WARNING, BatchRegistration, RecordDiagnostic
from agency.models import RecordResult, Submission
from agency.models.submissions import COMPLETED
from agency.models.types import utcnow
from agency.operations import metrics
from agency.runtime.worker import fenced_progress, run_in_chunks

# Memory held for speed, bounded however large the batches or the backlog: records handed
# over at intake (else the worker re-reads the file), and the results of a batch that ran
# here uninterrupted (its log is written, and a waiting request answered, without reading
# them back; else they stream from the database). Oldest are dropped first.
MAX_PRIMED_RECORDS = 2 * MAX_COLLECTED_RECORDS
MAX_KEPT_RESULTS = MAX_COLLECTED_RECORDS


class RecordChecks(Protocol):
    """Checks beyond the handle store's, run in each chunk's transaction (title ownership, conflicts).

    Defined here and implemented above (``admin.titles.TitleGuard``), so deposits know no administration.
    """

    def before_registration(self, session: Session, registrant: Registrant,
                            records: Sequence[DepositRecord]) -> dict[int, RecordDiagnostic]:
        """Per record: a Failure (not registered) or a Warning (registered, with this message)."""

    def after_registration(self, session: Session, registrant: Registrant,
                           records: Sequence[DepositRecord]) -> dict[int, str]:
        """Per registered record: a note that turns its Success into a Warning ("with conflict: ...")."""


class AllChecks:
    """Several ``RecordChecks`` as one: a record's first Failure wins, else its first Warning; notes join."""

    def __init__(self, *checks: RecordChecks) -> None:
        self.checks = checks

    def before_registration(self, session: Session, registrant: Registrant,
                            records: Sequence[DepositRecord]) -> dict[int, RecordDiagnostic]:
        verdicts: dict[int, RecordDiagnostic] = {}
        for check in self.checks:
            for seq, verdict in check.before_registration(session, registrant, records).items():
                if seq not in verdicts or (verdict.status == FAILURE and verdicts[seq].status != FAILURE):
                    verdicts[seq] = verdict
        return verdicts

    def after_registration(self, session: Session, registrant: Registrant,
                           records: Sequence[DepositRecord]) -> dict[int, str]:
        notes: dict[int, str] = {}
        for check in self.checks:
            for seq, note in check.after_registration(session, registrant, records).items():
                notes[seq] = f"{notes[seq]}; {note}" if seq in notes else note
        return notes


def checked_registration(session: Session, registration: BatchRegistration, checks: RecordChecks | None,
                         chunk: list[DepositRecord]) -> list[RecordDiagnostic]:
    """Register a chunk, letting ``checks`` fail records before and annotate them after."""
    if checks is None:
        return registration.register(session, chunk)
    verdicts = checks.before_registration(session, registration.registrant, chunk)
    failed = {seq for seq, v in verdicts.items() if v.status == FAILURE}
    writable = [r for r in chunk if r.seq not in failed]
    registered = {d.seq: d for d in registration.register(session, writable)}
    written = [r for r in writable if registered[r.seq].status == SUCCESS]
    notes = checks.after_registration(session, registration.registrant, written) if written else {}
    out = []
    for record in chunk:
        if record.seq in failed:
            out.append(verdicts[record.seq])
            continue
        result = registered[record.seq]
        if result.status == SUCCESS and record.seq in notes:
            verb = "Added" if result.outcome == "added" else "Updated"
            result = replace(result, status=WARNING, message=f"{verb} {notes[record.seq]}")
        if result.status != FAILURE and record.seq in verdicts:
            result = replace(result, status=WARNING, message=f"{result.message}; {verdicts[record.seq].message}")
        out.append(result)
    return out


@dataclass
class _OpenBatch:
    """A batch being read: its record stream and what it has seen, kept between slices."""

    records: Iterator[DepositRecord]
    registration: BatchRegistration | ResourceRegistration
    records_done: int
    results: list[RecordDiagnostic] | None  # every result so far, while the batch is small and ran here


@dataclass
class DepositRunner:
    """Registers a deposit's records in chunks and writes its log when done."""

    settings: Settings
    db: Database
    logs: BatchLogs
    on_completed: object = None  # callable(session, submission) or None
    checks: RecordChecks | None = None
    _open: dict[int, _OpenBatch] = field(default_factory=dict)
    _primed: dict[int, list[DepositRecord]] = field(default_factory=dict)
    _finished: dict[int, list[RecordDiagnostic]] = field(default_factory=dict)

    def prime(self, submission_id: int, records: list[DepositRecord] | None) -> None:
        """Records already extracted at intake: used instead of re-reading the file, if still fresh."""
        if records is None:
            return
        self._primed[submission_id] = records
        _drop_oldest(self._primed, MAX_PRIMED_RECORDS)  # another process may be doing the work

    def finished_results(self, submission_id: int) -> list[RecordDiagnostic] | None:
        """The results of a batch this runner just completed, once, if it kept them; else None."""
        return self._finished.pop(submission_id, None)

    def run_slice(self, submission_id: int, owner: str) -> bool:
        try:
            with self.db.sessions() as session:
                submission = session.get(Submission, submission_id)
                batch = self._batch_for(session, submission)
            return run_in_chunks(self.settings, batch.records,
                                 lambda chunk: self._register_chunk(submission_id, owner, batch, chunk),
                                 lambda: self._finish(submission_id, owner, batch))
        except BaseException:
            # Nothing read in a failed slice may outlive it: a record stream that raised is
            # exhausted, and reusing it would end the batch early as if it were complete.
            # The next claim starts again from the file and the last committed chunk.
            self._open.pop(submission_id, None)
            self._primed.pop(submission_id, None)
            raise

    def _batch_for(self, session: Session, submission: Submission) -> _OpenBatch:
        batch = self._open.get(submission.id)
        if batch is not None and batch.records_done == submission.records_done:
            return batch
        registrant = registrant_by_id(session, submission.account_id)
        seen = {doi_key(doi): seq for doi, seq in session.execute(
            select(RecordResult.doi, RecordResult.seq).where(
                RecordResult.submission_id == submission.id,
                RecordResult.outcome.in_(("added", "updated", "stale"))))}
        primed = self._primed.pop(submission.id, None)
        results = None
        if primed is not None and submission.records_done == 0:
            records = iter(primed)
            results = [] if len(primed) <= MAX_KEPT_RESULTS else None
        elif is_resource_namespace(submission.namespace):
            path = submission_path(self.settings.batch_dir, submission.storage_path)
            records = iter_resource_records(path, skip=submission.records_done)
        else:
            path = submission_path(self.settings.batch_dir, submission.storage_path)
            records = iter_records(path, submission.batch_timestamp, skip=submission.records_done)
        registration = ResourceRegistration(registrant, submission.id, self.settings.handle_ttl) \
            if is_resource_namespace(submission.namespace) \
            else BatchRegistration(registrant, submission.id, self.settings.handle_ttl, seen)
        batch = _OpenBatch(
            records=records,
            registration=registration,
            records_done=submission.records_done,
            results=results,
        )
        self._open[submission.id] = batch
        return batch

    def _register_chunk(self, submission_id: int, owner: str, batch: _OpenBatch,
                        chunk: list[DepositRecord]) -> None:
        try:
            with self.db.transaction() as session:
                submission = session.get(Submission, submission_id)
                diagnostics = checked_registration(session, batch.registration, self.checks, chunk)
                bulk_insert(session.connection(), RecordResult.__table__, [
                    {"seq": d.seq, "doi": d.doi[:MAX_DOI_LENGTH], "status": d.status, "message": d.message,
                     "outcome": d.outcome} for d in diagnostics], constants={"submission_id": submission_id})
                statuses = [d.status for d in diagnostics]
                fenced_progress(
                    session, submission, owner, self.settings,
                    records_done=submission.records_done + len(chunk),
                    record_count=submission.record_count + len(chunk),
                    success_count=submission.success_count + statuses.count(SUCCESS),
                    warning_count=submission.warning_count + statuses.count(WARNING),
                    failure_count=submission.failure_count + statuses.count(FAILURE),
                )
        except BaseException:
            self._open.pop(submission_id, None)  # rebuilt (file, and what the batch has seen) on the next claim
            raise
        metrics.count_records(d.outcome for d in diagnostics)
        batch.records_done += len(chunk)
        if batch.results is not None:
            batch.results.extend(diagnostics)

    def _finish(self, submission_id: int, owner: str, batch: _OpenBatch) -> None:
        self._open.pop(submission_id, None)
        with self.db.sessions() as session:
            submission = session.get(Submission, submission_id)
            kept = batch.results if batch.results is not None and len(batch.results) == submission.records_done \
                else None
            if kept is not None:
                diagnostics: Iterable[RecordDiagnostic] = kept
            else:
                results = session.execute(
                    select(RecordResult.seq, RecordResult.doi, RecordResult.status, RecordResult.message,
                           RecordResult.outcome)
                    .where(RecordResult.submission_id == submission_id).order_by(RecordResult.seq)
                    .execution_options(yield_per=2000))
                diagnostics = (RecordDiagnostic(*row) for row in results)
            log_path = submission_path(self.settings.batch_dir, submission.storage_path, LOG_FILE)
            self.logs.write(log_path, submission, diagnostics, BatchCounts.of(submission))
        with self.db.transaction() as session:
            submission = session.get(Submission, submission_id)
            fenced_progress(session, submission, owner, self.settings, status=COMPLETED,
                            completed_at=utcnow(), lease_owner=None, lease_expires_at=None,
                            index_status="pending")
            if self.on_completed:
                self.on_completed(session, submission)
            received_at = submission.received_at
        metrics.DEPOSIT_SECONDS.observe(max(0.0, (utcnow() - received_at).total_seconds()))
        if kept is not None:
            self._finished[submission_id] = kept
            _drop_oldest(self._finished, MAX_KEPT_RESULTS)  # nobody waited for these


def _drop_oldest(lists: dict[int, list], most_items: int) -> None:
    """Drop the oldest entries until the lists hold at most ``most_items`` items in all (the newest stays)."""
    total = sum(len(items) for items in lists.values())
    while total > most_items and len(lists) > 1:
        total -= len(lists.pop(next(iter(lists))))
