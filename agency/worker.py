"""The worker: claims queued submissions and runs them, slice by slice, fairly.

A claim is a lease on the submission row (``SELECT … FOR UPDATE SKIP LOCKED`` on
PostgreSQL). Every chunk of records is committed together with its results and
the submission's progress, fenced by the lease: a worker that lost its lease
cannot commit, and a restarted worker resumes after the last committed chunk.
After each slice the lease is released, and the next claim prefers the
submission served least recently, so one registrant's huge batch cannot hold
up another's small one.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable, Iterable, Iterator, Protocol

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from agency.accounts import registrant_by_id
from agency.batch_files import LOG_FILE, submission_path
from agency.config import Settings
from agency.db import Database, bulk_insert
from agency.diagnostics import BatchCounts, BatchLogs
from agency.doi_syntax import MAX_DOI_LENGTH, doi_key
from agency.extraction import MAX_COLLECTED_RECORDS, DepositRecord, iter_records
from agency.handles import FAILURE, SUCCESS, WARNING, BatchRegistration, RecordDiagnostic
from agency.models import RecordResult, Submission
from agency.models.submissions import COMPLETED, PROCESSING, QUEUED
from agency.models.types import utcnow

log = logging.getLogger(__name__)
# Memory held for speed, bounded however large the batches or the backlog: records handed
# over at intake (else the worker re-reads the file), and the results of a batch that ran
# here uninterrupted (its log is written, and a waiting request answered, without reading
# them back; else they stream from the database). Oldest are dropped first.
MAX_PRIMED_RECORDS = 2 * MAX_COLLECTED_RECORDS
MAX_KEPT_RESULTS = MAX_COLLECTED_RECORDS


class LostLease(Exception):
    """Another worker owns the submission now; this worker's chunk was rolled back."""


class SliceRunner(Protocol):
    def run_slice(self, submission_id: int, owner: str) -> bool:
        """Process part of a claimed submission; True when it is finished."""


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def fenced_progress(session: Session, submission: Submission, owner: str, settings: Settings, **changes) -> None:
    """Record progress only while still holding the lease (raises LostLease otherwise)."""
    result = session.execute(
        update(Submission)
        .where(Submission.id == submission.id, Submission.lease_owner == owner,
               Submission.records_done == submission.records_done)
        .values(**{"lease_expires_at": utcnow() + timedelta(seconds=settings.lease_seconds), **changes})
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise LostLease(f"submission {submission.id}: lease lost")


def run_in_chunks(settings: Settings, items: Iterator, process: Callable[[list], None],
                  finish: Callable[[], None]) -> bool:
    """One slice of a submission: items in chunks of ``chunk_records``, at most
    ``worker_slice_records`` of them; when the items run out, ``finish`` and return True."""
    done_in_slice = 0
    while done_in_slice < settings.worker_slice_records:
        chunk = list(itertools.islice(items, settings.chunk_records))
        if not chunk:
            finish()
            return True
        process(chunk)
        done_in_slice += len(chunk)
    return False


def release(db: Database, submission_id: int, owner: str) -> None:
    with db.transaction() as session:
        session.execute(update(Submission)
                        .where(Submission.id == submission_id, Submission.lease_owner == owner)
                        .values(lease_owner=None, lease_expires_at=None, last_slice_at=utcnow())
                        .execution_options(synchronize_session=False))


@dataclass
class _OpenBatch:
    """A batch being read: its record stream and what it has seen, kept between slices."""

    records: Iterator[DepositRecord]
    registration: BatchRegistration
    records_done: int
    results: list[RecordDiagnostic] | None  # every result so far, while the batch is small and ran here


@dataclass
class DepositRunner:
    """Registers a deposit's records in chunks and writes its log when done."""

    settings: Settings
    db: Database
    logs: BatchLogs
    on_completed: object = None  # callable(session, submission) or None
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
        with self.db.sessions() as session:
            submission = session.get(Submission, submission_id)
            batch = self._batch_for(session, submission)
        return run_in_chunks(self.settings, batch.records,
                             lambda chunk: self._register_chunk(submission_id, owner, batch, chunk),
                             lambda: self._finish(submission_id, owner, batch))

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
        else:
            path = submission_path(self.settings.batch_dir, submission.storage_path)
            records = iter_records(path, submission.batch_timestamp, skip=submission.records_done)
        batch = _OpenBatch(
            records=records,
            registration=BatchRegistration(registrant, submission.id, self.settings.handle_ttl, seen),
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
                diagnostics = batch.registration.register(session, chunk)
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
        if kept is not None:
            self._finished[submission_id] = kept
            _drop_oldest(self._finished, MAX_KEPT_RESULTS)  # nobody waited for these


def _drop_oldest(lists: dict[int, list], most_items: int) -> None:
    """Drop the oldest entries until the lists hold at most ``most_items`` items in all (the newest stays)."""
    total = sum(len(items) for items in lists.values())
    while total > most_items and len(lists) > 1:
        total -= len(lists.pop(next(iter(lists))))


class Worker:
    """Claims runnable submissions of the kinds it has runners for and runs one slice at a time."""

    def __init__(self, settings: Settings, db: Database, runners: dict[str, SliceRunner],
                 worker_id: str | None = None) -> None:
        self.settings = settings
        self.db = db
        self.runners = runners
        self.worker_id = worker_id or default_worker_id()
        self.wakeup = threading.Event()
        # Notified after every slice, so in-process waiters learn of completion at once.
        self.progress = threading.Condition()

    def claim(self) -> tuple[int, str] | None:
        now = utcnow()
        runnable = and_(
            Submission.kind.in_(list(self.runners)),
            or_(Submission.status == QUEUED,
                and_(Submission.status == PROCESSING,
                     or_(Submission.lease_owner.is_(None), Submission.lease_expires_at < now))))
        with self.db.transaction() as session:
            query = (select(Submission.id, Submission.kind).where(runnable)
                     .order_by(Submission.last_slice_at.asc().nulls_first(), Submission.id).limit(1))
            if self.db.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            row = session.execute(query).first()
            if row is None:
                return None
            claimed = session.execute(
                update(Submission).where(Submission.id == row.id, runnable)
                .values(status=PROCESSING, lease_owner=self.worker_id,
                        lease_expires_at=now + timedelta(seconds=self.settings.lease_seconds))
                .execution_options(synchronize_session=False))
            if claimed.rowcount != 1:
                return None
            session.execute(update(Submission).where(Submission.id == row.id, Submission.started_at.is_(None))
                            .values(started_at=now).execution_options(synchronize_session=False))
        return row.id, row.kind

    def run_once(self) -> bool:
        """Run one slice of one submission; False when there was nothing to do."""
        claimed = self.claim()
        if claimed is None:
            return False
        submission_id, kind = claimed
        try:
            finished = self.runners[kind].run_slice(submission_id, self.worker_id)
        except LostLease as exc:
            log.warning("%s", exc)
            return True
        except Exception:
            log.exception("submission %s failed in this slice; it will be retried", submission_id)
            release(self.db, submission_id, self.worker_id)
            raise
        if not finished:
            release(self.db, submission_id, self.worker_id)
        with self.progress:
            self.progress.notify_all()
        return True

    def run_until_idle(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while self.run_once():
            if time.monotonic() > deadline:
                raise TimeoutError("worker still busy")

    def unfinished(self) -> int:
        """How many submissions of this worker's kinds are queued or processing."""
        from sqlalchemy import func

        with self.db.sessions() as session:
            return session.scalar(select(func.count()).select_from(Submission).where(
                Submission.kind.in_(list(self.runners)), Submission.status.in_((QUEUED, PROCESSING))))

    def drain(self, timeout: float) -> None:
        """Work until nothing is left, waiting out leases that a dead worker left behind."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.run_once():
                if not self.unfinished():
                    return
                time.sleep(min(0.5, self.settings.lease_seconds / 4))
        raise TimeoutError("worker still busy")

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                busy = False
                stop.wait(1.0)
            if not busy:
                self.wakeup.wait(self.settings.worker_poll_seconds)
                self.wakeup.clear()

    def start_thread(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, args=(stop,), name="agency-worker", daemon=True)
        thread.start()
        return thread
