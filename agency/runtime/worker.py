"""The worker: claims queued submissions and runs them, slice by slice, fairly.

It knows no kind of submission: runners (deposits, query jobs) are handed to it.

A claim is a lease on the submission row (``SELECT … FOR UPDATE SKIP LOCKED`` on
PostgreSQL). Every chunk of records is committed together with its results and
the submission's progress, fenced by the lease: a worker that lost its lease
cannot commit, and a restarted worker resumes after the last committed chunk.
After each slice the lease is released, and the next claim prefers the
submission served least recently, so one registrant's huge batch cannot hold
up another's small one.

A slice that raises is rolled back to the last committed chunk and tried again
after a back-off that doubles; after ``worker_max_attempts`` such failures the
submission stops as ``failed`` with its reason, until the operator retries it.
Running out of disk space backs off the same way but uses up no attempt: the
batch is not at fault.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
from datetime import timedelta
from typing import Callable, Iterator, Protocol

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from agency.config import Settings
from agency.db import Database
from agency.models import Account, Submission
from agency.models.submissions import FAILED, PROCESSING, QUEUED, unfinished
from agency.models.types import utcnow
from agency.runtime.storage_errors import describe_failure, is_out_of_space

log = logging.getLogger(__name__)


class LostLease(Exception):
    """Another worker owns the submission now; this worker's chunk was rolled back."""


class SliceRunner(Protocol):
    def run_slice(self, submission_id: int, owner: str) -> bool:
        """Process part of a claimed submission; True when it is finished."""


def _account_enabled():
    """A disabled account's submissions stay queued (not lost) until it is enabled again."""
    return Submission.account_id.not_in(select(Account.id).where(Account.disabled_at.is_not(None)))


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


def run_kept_source_slice(settings: Settings, kept: dict, submission_id: int, open_source: Callable[[], object],
                          process: Callable[[object, list], None], finish: Callable[[], None]) -> bool:
    """``run_in_chunks`` over a source (``.lines``) a runner keeps between slices in ``kept``.

    A slice that raises drops the kept source: a line stream that raised is exhausted, and
    reusing it would end the submission early as if its file were complete. The next claim
    opens the file again from the last committed chunk."""
    try:
        source = open_source()
        return run_in_chunks(settings, source.lines, lambda chunk: process(source, chunk), finish)
    except BaseException:
        kept.pop(submission_id, None)
        raise


def release(db: Database, submission_id: int, owner: str) -> None:
    with db.transaction() as session:
        session.execute(update(Submission)
                        .where(Submission.id == submission_id, Submission.lease_owner == owner)
                        .values(lease_owner=None, lease_expires_at=None, last_slice_at=utcnow())
                        .execution_options(synchronize_session=False))


def retry_delay(settings: Settings, attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed slices: doubling, capped."""
    return min(settings.worker_retry_max_seconds,
               settings.worker_retry_base_seconds * 2 ** max(0, min(attempts, 32) - 1))


FailedHook = Callable[[Session, Submission], None]


def record_failure(db: Database, settings: Settings, submission_id: int, owner: str,
                   exc: BaseException, on_failed: FailedHook | None = None) -> str:
    """Note a failed slice: back off, or stop the submission as failed once attempts run out.

    Returns the submission's status afterwards. Only the lease holder may write it.
    ``on_failed`` runs in the same transaction when the submission stops as failed (the
    notice to the depositor and the operator exists iff the failure is recorded)."""
    reason = describe_failure(exc)
    out_of_space = is_out_of_space(exc)
    with db.transaction() as session:
        submission = session.get(Submission, submission_id)
        if submission is None or submission.lease_owner != owner:
            return submission.status if submission is not None else FAILED
        attempts = submission.attempts + (0 if out_of_space else 1)
        delay = settings.worker_retry_max_seconds if out_of_space else retry_delay(settings, attempts)
        submission.attempts = attempts
        submission.failure_reason = reason
        submission.lease_owner = submission.lease_expires_at = None
        submission.last_slice_at = utcnow()
        if attempts >= settings.worker_max_attempts:
            submission.status = FAILED
            submission.retry_at = None
            submission.completed_at = utcnow()
            log.error("submission %s failed after %s attempts: %s", submission_id, attempts, reason)
            if on_failed is not None:
                session.flush()
                on_failed(session, submission)
        else:
            submission.retry_at = utcnow() + timedelta(seconds=delay)
            log.warning("submission %s: slice failed (%s); attempt %s of %s, next in %.0f s", submission_id,
                        reason, attempts, settings.worker_max_attempts, delay)
        return submission.status


class Worker:
    """Claims runnable submissions of the kinds it has runners for and runs one slice at a time."""

    def __init__(self, settings: Settings, db: Database, runners: dict[str, SliceRunner],
                 worker_id: str | None = None, on_failed: FailedHook | None = None) -> None:
        self.settings = settings
        self.db = db
        self.runners = runners
        self.on_failed = on_failed
        self.worker_id = worker_id or default_worker_id()
        self.wakeup = threading.Event()
        self.stopping = threading.Event()  # set by run_forever's stop: no further slice is started
        # Notified after every slice, so in-process waiters learn of completion at once.
        self.progress = threading.Condition()

    def _runnable(self, now):
        return and_(
            Submission.kind.in_(list(self.runners)),
            or_(Submission.retry_at.is_(None), Submission.retry_at <= now),
            _account_enabled(),
            unfinished(Submission.status),  # the partial index's condition: SQLite then uses it
            or_(Submission.status == QUEUED,
                and_(Submission.status == PROCESSING,
                     or_(Submission.lease_owner.is_(None), Submission.lease_expires_at < now))))

    def others_waiting(self, submission_id: int) -> bool:
        """Whether another submission could be claimed now (a read: no lock, no commit)."""
        with self.db.sessions() as session:
            return session.execute(select(Submission.id).where(self._runnable(utcnow()),
                                                               Submission.id != submission_id).limit(1)).first() \
                is not None

    def claim(self) -> tuple[int, str] | None:
        now = utcnow()
        runnable = self._runnable(now)
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

    def run_once(self, keep_going: bool = False) -> bool:
        """Run one slice of one submission; False when there was nothing to do.

        With ``keep_going``, further slices of the same submission follow for as long as no other
        submission waits (a service's worker loop; tests step one slice at a time)."""
        claimed = self.claim()
        if claimed is None:
            return False
        submission_id, kind = claimed
        try:
            finished = self.runners[kind].run_slice(submission_id, self.worker_id)
            # Slices take turns between submissions; with nobody else waiting the lease (renewed
            # by every chunk) is simply kept, saving a release and a claim, two commits, a slice.
            while keep_going and not finished and not self.stopping.is_set() \
                    and not self.others_waiting(submission_id):
                self._notify_progress()
                finished = self.runners[kind].run_slice(submission_id, self.worker_id)
        except LostLease as exc:
            log.warning("%s", exc)
            return True
        except Exception as exc:
            log.exception("submission %s failed in this slice", submission_id)
            record_failure(self.db, self.settings, submission_id, self.worker_id, exc, self.on_failed)
            self._notify_progress()
            return True
        if not finished:
            release(self.db, submission_id, self.worker_id)
        self._notify_progress()
        return True

    def _notify_progress(self) -> None:
        with self.progress:
            self.progress.notify_all()

    def run_until_idle(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while self.run_once(keep_going=True):
            if time.monotonic() > deadline:
                raise TimeoutError("worker still busy")

    def unfinished(self) -> int:
        """How many submissions of this worker's kinds are queued or processing."""
        from sqlalchemy import func

        with self.db.sessions() as session:
            return session.scalar(select(func.count()).select_from(Submission).where(
                Submission.kind.in_(list(self.runners)), Submission.status.in_((QUEUED, PROCESSING)),
                _account_enabled()))

    def drain(self, timeout: float) -> None:
        """Work until nothing is left, waiting out leases that a dead worker left behind."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.run_once(keep_going=True):
                if not self.unfinished():
                    return
                time.sleep(min(0.5, self.settings.lease_seconds / 4))
        raise TimeoutError("worker still busy")

    def run_forever(self, stop: threading.Event) -> None:
        self.stopping = stop
        errors_in_a_row = 0
        while not stop.is_set():
            try:
                busy = self.run_once(keep_going=True)
                errors_in_a_row = 0
            except Exception as exc:  # the database itself failed (recording a failure, or claiming)
                errors_in_a_row += 1
                busy = False
                log.exception("worker: cannot claim or record work")
                stop.wait(self.settings.worker_retry_max_seconds if is_out_of_space(exc)
                          else retry_delay(self.settings, errors_in_a_row))
            if not busy:
                self.wakeup.wait(self.settings.worker_poll_seconds)
                self.wakeup.clear()

    def start_thread(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, args=(stop,), name="agency-worker", daemon=True)
        thread.start()
        return thread
