"""Staff actions on the submission queue, each written to the audit trail.

A submission "stuck" in process is one whose worker died or hangs while its lease
still runs (up to ``AGENCY_LEASE_SECONDS``). Releasing the lease lets any worker
take it at once; it resumes after the last committed chunk. This is safe even if
the old worker is alive: its next progress write is fenced on the lease and fails.

Pausing holds a queued or processing submission: no worker claims a paused one,
and a worker in the middle of it loses its lease the same way, so its next write
fails and nothing after the last committed chunk is kept. Resuming makes it
claimable again, where it stopped.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from agency.admin.audit import Actor, record_event
from agency.models import Submission
from agency.models.submissions import PAUSED, PROCESSING, QUEUED


class QueueError(ValueError):
    """A queue action that does not apply to this submission."""


def release_lease(session: Session, actor: Actor, submission_id: int, reason: str | None = None) -> None:
    submission = session.get(Submission, submission_id)
    if submission is None or submission.status != PROCESSING:
        raise QueueError(f"Submission {submission_id} is not in process: nothing to release.")
    before = {"lease_owner": submission.lease_owner,
              "lease_expires_at": submission.lease_expires_at.isoformat() if submission.lease_expires_at else None}
    session.execute(update(Submission).where(Submission.id == submission_id, Submission.status == PROCESSING)
                    .values(lease_owner=None, lease_expires_at=None).execution_options(synchronize_session=False))
    record_event(session, actor, "submission.release", f"submission:{submission_id}",
                 account_id=submission.account_id, before=before, after={"lease_owner": None}, reason=reason)


def pause(session: Session, actor: Actor, submission_id: int, reason: str | None = None) -> None:
    submission = session.get(Submission, submission_id, with_for_update=True)
    if submission is None or submission.status not in (QUEUED, PROCESSING):
        state = "does not exist" if submission is None else f"is {submission.status}"
        raise QueueError(f"Submission {submission_id} {state}: only queued or processing ones can be paused.")
    before = {"status": submission.status, "lease_owner": submission.lease_owner}
    submission.status, submission.lease_owner, submission.lease_expires_at = PAUSED, None, None
    record_event(session, actor, "submission.pause", f"submission:{submission_id}",
                 account_id=submission.account_id, before=before, after={"status": PAUSED}, reason=reason)


def resume(session: Session, actor: Actor, submission_id: int, reason: str | None = None) -> str:
    """Back in the queue: as processing without a lease once begun (so it goes on where it stopped), else queued."""
    submission = session.get(Submission, submission_id, with_for_update=True)
    if submission is None or submission.status != PAUSED:
        state = "does not exist" if submission is None else f"is {submission.status}"
        raise QueueError(f"Submission {submission_id} {state}: only paused ones can be resumed.")
    status = PROCESSING if submission.started_at is not None else QUEUED
    submission.status = status
    record_event(session, actor, "submission.resume", f"submission:{submission_id}",
                 account_id=submission.account_id, before={"status": PAUSED}, after={"status": status},
                 reason=reason)
    return status
