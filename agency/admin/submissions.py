"""The operator's view of submissions: list them by state, and retry the ones that failed.

A submission stops as ``failed`` when its slices keep raising (runtime.worker);
nothing about it is lost: its committed records stay, and a retry resumes after
the last committed chunk with a fresh set of attempts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from agency.admin.audit import Actor, record_event
from agency.db import Database
from agency.models import Account, Submission
from agency.models.submissions import FAILED, QUEUED


class RetryRefused(Exception):
    """The submission does not exist or has not failed."""


@dataclass(frozen=True)
class SubmissionLine:
    id: int
    login: str
    kind: str
    status: str
    file_name: str
    doi_batch_id: str | None
    received_at: datetime
    records_done: int
    attempts: int
    failure_reason: str | None

    def describe(self) -> str:
        text = (f"{self.id:>8}  {self.status:<10} {self.login:<16} {self.kind:<8} {self.received_at:%Y-%m-%d %H:%M} "
                f"{self.file_name} (batch {self.doi_batch_id or '-'}), {self.records_done} records done")
        if self.failure_reason:
            text += f"; attempts {self.attempts}: {self.failure_reason}"
        return text


def list_submissions(db: Database, statuses: list[str], limit: int = 100) -> list[SubmissionLine]:
    """Newest first, in the given states."""
    with db.sessions() as session:
        rows = session.execute(
            select(Submission, Account.login).join(Account, Account.id == Submission.account_id)
            .where(Submission.status.in_(statuses))
            .order_by(Submission.received_at.desc(), Submission.id.desc()).limit(limit)).all()
        return [SubmissionLine(s.id, login, s.kind, s.status, s.file_name, s.doi_batch_id, s.received_at,
                               s.records_done, s.attempts, s.failure_reason) for s, login in rows]


def retry_failed(db: Database, submission_id: int, actor: Actor, reason: str | None = None) -> None:
    """Queue a failed submission again (fresh attempts), with an audit event in the same transaction."""
    with db.transaction() as session:
        submission = session.get(Submission, submission_id)
        if submission is None:
            raise RetryRefused(f"no submission {submission_id}")
        if submission.status != FAILED:
            raise RetryRefused(f"submission {submission_id} is {submission.status}, not failed: nothing to retry")
        before = {"status": submission.status, "attempts": submission.attempts,
                  "failure_reason": submission.failure_reason}
        submission.status = QUEUED
        submission.attempts = 0
        submission.retry_at = None
        submission.failure_reason = None
        submission.completed_at = None
        submission.lease_owner = submission.lease_expires_at = None
        record_event(session, actor, "submission.retry", f"submission:{submission_id}",
                     account_id=submission.account_id, before=before,
                     after={"status": QUEUED, "attempts": 0}, reason=reason)
