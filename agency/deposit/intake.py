"""Receiving a batch: limits, durable storage under batches/, the submission row.

Nothing is acknowledged before the file is fsynced in its folder and its
submission row is committed, and refused files are kept too: who sent what,
when, and why it was refused.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Callable

from lxml import etree
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from agency.accounts import Registrant
from agency.deposit.batch_files import (
    BATCH_FILE, LOG_FILE, store_received_file, submission_folder, submission_path, uploaded_file_name,
)
from agency.config import Settings
from agency.db import Database
from agency.deposit.logs import REFUSED_FILE_COUNTS, BatchLogs, Refusal
from agency.deposit.extraction import DepositRecord, RecordCollector
from agency.models import Account, Submission
from agency.models.submissions import PROCESSING, QUEUED, REFUSED
from agency.models.types import utcnow
from agency.deposit.validation import DepositValidator, Verdict, hardened_parser_options
from agency.runtime.storage_errors import OUT_OF_SPACE_MESSAGE, is_out_of_space

SPOOL_CHUNK = 1024 * 1024


class IntakeError(Exception):
    """A request refused before any file was accepted; carries its HTTP status."""

    status = 400

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class TooLarge(IntakeError):
    status = 413


class TooManyPending(IntakeError):
    status = 429


class EmptyUpload(IntakeError):
    status = 400


class OutOfSpace(IntakeError):
    """The disk (or the database's storage) is full: nothing was accepted; try later (507 + Retry-After)."""

    status = 507
    RETRY_AFTER = 300

    def __init__(self) -> None:
        super().__init__(f"{OUT_OF_SPACE_MESSAGE}: the file was not accepted and nothing was recorded. "
                         "Send it again later.", retry_after=self.RETRY_AFTER)


@dataclass
class SpooledFile:
    path: Path
    size: int
    sha256: str


OnRefused = Callable[[Session, Submission, Registrant], None]


class DepositIntake:
    def __init__(self, settings: Settings, db: Database, validator: DepositValidator, logs: BatchLogs,
                 on_refused: OnRefused | None = None,
                 on_accepted: Callable[[int, list[DepositRecord] | None], None] | None = None) -> None:
        self.settings = settings
        self.db = db
        self.validator = validator
        self.logs = logs
        self.on_refused = on_refused
        self.on_accepted = on_accepted
        self.incoming = settings.batch_dir / ".incoming"

    # -- limits -----------------------------------------------------------
    def check_capacity(self, registrant: Registrant) -> None:
        """Refuse early (before the upload is read) when the account already has too many unfinished
        submissions. Only a first look: ``_record`` counts again under the account's lock."""
        with self.db.sessions() as session:
            self._refuse_when_full(session, registrant)

    def _refuse_when_full(self, session: Session, registrant: Registrant) -> None:
        pending = session.scalar(select(func.count()).select_from(Submission).where(
            Submission.account_id == registrant.id, Submission.status.in_((QUEUED, PROCESSING))))
        if pending >= self.settings.max_pending_per_account:
            raise TooManyPending(
                f"{pending} submissions of this account are still queued or processing "
                f"(at most {self.settings.max_pending_per_account}); retry when some have completed.",
                retry_after=30)

    def _lock_account(self, session: Session, registrant: Registrant) -> None:
        """Hold the account's row until commit, so counting and inserting pending submissions is one step.

        A no-op update takes the row lock on PostgreSQL and the database's write lock on SQLite;
        simultaneous deposits of one account queue here instead of all counting the same number.
        It sets a column no foreign key refers to: setting the key (``id = id``) makes SQLite check
        every referring table for the old key, and handles.account_id has no index, so each deposit
        scanned the whole handles table (120 ms at 60,000 DOIs, seconds at millions)."""
        session.execute(update(Account).where(Account.id == registrant.id).values(email=Account.email)
                        .execution_options(synchronize_session=False))

    def spool(self, source: IO[bytes]) -> SpooledFile:
        """Copy an upload to disk, fsynced, refusing it once it passes the size limit."""
        self.incoming.mkdir(parents=True, exist_ok=True)
        path = self.incoming / f"{uuid.uuid4().hex}.part"
        digest, size, limit = hashlib.sha256(), 0, self.settings.max_batch_bytes
        try:
            with open(path, "wb") as fh:
                while chunk := source.read(SPOOL_CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge(f"The file is larger than the limit of {limit} bytes; "
                                       "split it into smaller batches.")
                    digest.update(chunk)
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if size == 0:
            path.unlink(missing_ok=True)
            raise EmptyUpload("The uploaded file is empty.")
        return SpooledFile(path, size, digest.hexdigest())

    def record_text_file(self, registrant: Registrant, spooled: SpooledFile, kind: str, operation: str,
                         file_name: str, stored_name: str, status: str = QUEUED, **fields) -> Submission:
        """Commit a submission row of ``kind`` for a checked text file and move the file into its folder
        as ``stored_name`` (query jobs, URL updates, aliasing files); ``fields`` are further columns."""
        now = utcnow()
        with self.db.transaction() as session:
            submission = Submission(account_id=registrant.id, kind=kind, operation=operation, status=status,
                                    file_name=uploaded_file_name(file_name, stored_name), byte_size=spooled.size,
                                    sha256=spooled.sha256, received_at=now, **fields)
            session.add(submission)
            session.flush()
            submission.storage_path = submission_folder(registrant.login, now, submission.id)
            store_received_file(spooled.path, self.settings.batch_dir, submission.storage_path, stored_name)
        return submission

    # -- receiving ----------------------------------------------------------
    def receive(self, registrant: Registrant, source: IO[bytes], file_name: str,
                operation: str = "doMDUpload") -> tuple[Submission, Verdict]:
        """Store, validate and record one deposit file; returns the submission and the verdict."""
        self.check_capacity(registrant)
        try:
            spooled = self.spool(source)
            try:
                streamed = RecordCollector()
                verdict = self.validator.check(spooled.path, body_items=streamed)
                records = streamed.records if verdict.accepted else None
                submission = self._record(registrant, spooled, file_name, operation, verdict)
            finally:
                spooled.path.unlink(missing_ok=True)
        except IntakeError:
            raise
        except Exception as exc:
            if is_out_of_space(exc):
                raise OutOfSpace() from exc
            raise
        if verdict.accepted and self.on_accepted:
            # An in-process worker may take these records instead of parsing the file
            # again; the file stays the durable source should this process die.
            self.on_accepted(submission.id, records)
        return submission, verdict

    def _record(self, registrant: Registrant, spooled: SpooledFile, file_name: str, operation: str,
                verdict: Verdict) -> Submission:
        now = utcnow()
        with self.db.transaction() as session:
            if verdict.accepted:
                self._lock_account(session, registrant)
                self._refuse_when_full(session, registrant)
            submission = Submission(
                account_id=registrant.id, kind="deposit", operation=operation,
                status=QUEUED if verdict.accepted else REFUSED,
                file_name=uploaded_file_name(file_name, BATCH_FILE), byte_size=spooled.size, sha256=spooled.sha256,
                received_at=now,
            )
            if verdict.head:
                head = verdict.head
                submission.doi_batch_id = (head.doi_batch_id or "")[:255] or None
                submission.namespace = head.namespace
                submission.depositor_email = head.depositor_email
                submission.batch_timestamp = head.timestamp
            session.add(submission)
            session.flush()
            submission.storage_path = submission_folder(registrant.login, now, submission.id)
            store_received_file(spooled.path, self.settings.batch_dir, submission.storage_path, BATCH_FILE)
            if not verdict.accepted:
                self._refuse(session, submission, registrant, verdict, now)
        return submission

    def _refuse(self, session: Session, submission: Submission, registrant: Registrant,
                verdict: Verdict, now: datetime) -> None:
        refusal = Refusal(verdict.kind or "invalid", verdict.summary, verdict.issues)
        submission.refusal_kind = refusal.kind
        submission.refusal = refusal.to_json()
        submission.completed_at = now
        if submission.doi_batch_id is None:  # the log names the batch whenever the file lets us read it
            stored = submission_path(self.settings.batch_dir, submission.storage_path, BATCH_FILE)
            submission.doi_batch_id = readable_batch_id(stored)
        log_path = submission_path(self.settings.batch_dir, submission.storage_path, LOG_FILE)
        self.logs.write(log_path, submission, [], REFUSED_FILE_COUNTS, refusal)
        if self.on_refused:
            self.on_refused(session, submission, registrant)


def readable_batch_id(path: Path) -> str | None:
    """The ``doi_batch_id`` of a refused file, if it can be read before the file goes wrong."""
    try:
        with open(path, "rb") as fh:
            for _event, element in etree.iterparse(fh, events=("end",), tag="{*}doi_batch_id",
                                                   **hardened_parser_options()):
                return (element.text or "").strip()[:255] or None
    except (etree.XMLSyntaxError, OSError):
        return None
    return None
