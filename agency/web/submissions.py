"""Following submissions: look-ups scoped to their owner, status summaries, logs, waiting."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Sequence

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from agency.deposit.batch_files import BATCH_FILE, LOG_FILE, submission_path
from agency.deposit.logs import BatchLogs
from agency.handles.doi_syntax import MAX_DOI_LENGTH
from agency.handles.store import RecordDiagnostic
from agency.models import RecordResult, Submission
from agency.models.submissions import COMPLETED, PROCESSING, QUEUED, REFUSED
from agency.query.jobs import QUERY_KIND
from agency.services import Agency

MAX_ID = 2**31 - 1  # ids are INTEGER columns (32-bit on PostgreSQL)
LOG_STATUS = {QUEUED: "queued", PROCESSING: "in_process", COMPLETED: "completed", REFUSED: "completed"}


def own_submission(session: Session, account_id: int, submission_id: int, kind: str) -> Submission | None:
    """The submission of this kind if it belongs to this account; anything else is as good as absent."""
    if not 0 < submission_id <= MAX_ID:  # beyond the column's range: the database would raise, not miss
        return None
    submission = session.get(Submission, submission_id)
    if submission is None or submission.account_id != account_id or submission.kind != kind:
        return None
    return submission


class BadCursor(ValueError):
    """A ``?cursor=`` this service did not hand out."""


@dataclass(frozen=True)
class Page:
    items: list[Submission]
    next_cursor: str | None


def _cursor_of(submission: Submission) -> str:
    text = f"{submission.received_at.isoformat()}|{submission.id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _position(cursor: str) -> tuple[datetime, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, ident = text.partition("|")
        return datetime.fromisoformat(moment), int(ident)
    except (ValueError, UnicodeDecodeError):
        raise BadCursor(f"cursor {cursor[:60]!r} is not one this service handed out: use next_cursor "
                        "from the previous page, or leave it out for the first page") from None


def list_page(session: Session, account_id: int, limit: int, cursor: str | None = None, **filters) -> Page:
    """One page of the account's submissions, newest first; the cursor continues after the last one shown."""
    after = _position(cursor) if cursor else None
    found = list_own(session, account_id, limit=limit + 1, after=after, **filters)
    more = len(found) > limit
    items = found[:limit]
    return Page(items, _cursor_of(items[-1]) if more else None)


def list_own(session: Session, account_id: int, doi_batch_id: str | None = None,
             file_name: str | None = None, kind: str | None = None, limit: int = 100,
             after: tuple[datetime, int] | None = None) -> list[Submission]:
    query = select(Submission).where(Submission.account_id == account_id)
    if after is not None:
        moment, ident = after
        query = query.where(or_(Submission.received_at < moment,
                                and_(Submission.received_at == moment, Submission.id < ident)))
    if doi_batch_id:
        query = query.where(Submission.doi_batch_id == doi_batch_id)
    if file_name:
        query = query.where(Submission.file_name == file_name)
    if kind:
        query = query.where(Submission.kind == kind)
    return list(session.scalars(query.order_by(Submission.received_at.desc(), Submission.id.desc())
                                .limit(limit)))


def links(base: str, submission: Submission) -> dict[str, str]:
    """Where a submission is followed over HTTP: a deposit's status, log and file, a query job's status and result."""
    if submission.kind == QUERY_KIND:
        root = f"{base}/v1/queries/{submission.id}"
        return {"self": root, "result": f"{root}/result"}
    root = f"{base}/v1/deposits/{submission.id}"
    return {"self": root, "log": f"{root}/log", "file": f"{root}/file"}


def summary(submission: Submission, base: str = "") -> dict:
    body = {
        "submission_id": submission.id,
        "status": submission.status,
        "kind": submission.kind,
        "file_name": submission.file_name,
        "doi_batch_id": submission.doi_batch_id,
        "received_at": submission.received_at.isoformat(),
        "completed_at": submission.completed_at.isoformat() if submission.completed_at else None,
        "counts": {
            "record_count": submission.record_count, "success_count": submission.success_count,
            "warning_count": submission.warning_count, "failure_count": submission.failure_count,
            "records_done": submission.records_done,
        },
        "index_status": submission.index_status,
        "links": links(base, submission),
    }
    if submission.status == REFUSED:
        refusal = json.loads(submission.refusal or "{}")
        body["refusal"] = {"kind": submission.refusal_kind, "summary": refusal.get("summary"),
                           "errors": refusal.get("issues", [])}
    return body


def record_results(session: Session, submission_id: int,
                   kept: Sequence[RecordDiagnostic] | None = None) -> list[dict]:
    """Each record's result, in batch order: ``kept`` (the worker's own copy) when given, else the stored rows."""
    if kept is not None:
        rows = ((d.seq, d.doi[:MAX_DOI_LENGTH], d.status, d.message) for d in kept)
    else:
        rows = session.execute(select(RecordResult.seq, RecordResult.doi, RecordResult.status, RecordResult.message)
                               .where(RecordResult.submission_id == submission_id).order_by(RecordResult.seq))
    return [{"seq": seq, "doi": doi, "status": status, "msg": message} for seq, doi, status, message in rows]


def wait_until_finished(svc: Agency, submission_id: int, seconds: float) -> Submission:
    """Wait until the submission is completed or refused, or the time is up.

    An in-process worker wakes waiters after every slice; a worker in another
    process is noticed by re-reading the row at least every half second.
    """
    deadline = time.monotonic() + seconds
    while True:
        with svc.worker.progress:  # read under the lock: a notification cannot slip in between
            with svc.db.sessions() as session:
                submission = session.get(Submission, submission_id)
            remaining = deadline - time.monotonic()
            if submission.is_finished or remaining <= 0:
                return submission
            svc.worker.progress.wait(timeout=min(0.5, remaining))


def submission_file(svc: Agency, submission: Submission, name: str = BATCH_FILE) -> Path:
    return submission_path(svc.settings.batch_dir, submission.storage_path, name)


def log_document(svc: Agency, submission: Submission | None) -> str:
    """The XML log: the file once finished, else a status-only document as Crossref gives."""
    logs: BatchLogs = svc.logs
    if submission is None:
        return logs.render(None, "unknown_submission")
    if submission.is_finished:
        path = submission_file(svc, submission, LOG_FILE)
        if path.exists():
            return path.read_text(encoding="utf-8")
    return logs.render(submission, LOG_STATUS.get(submission.status, "queued"))
