"""Submissions (received files: deposits and query jobs) and per-record results."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, literal_column, text
from sqlalchemy.orm import Mapped, mapped_column

from agency.models.base import Base
from agency.models.types import UTCDateTime, utcnow

QUEUED, PROCESSING, COMPLETED, REFUSED = "queued", "processing", "completed", "refused"
# Accepted, but processing kept failing (unreadable file, ...): stopped with its reason until
# the operator retries it (`agency submissions retry ID`). Never reported as completed.
FAILED = "failed"
# Held by the operator (`agency submissions pause ID`): no worker takes it until it is resumed.
PAUSED = "paused"
# The statuses a worker may still claim. Written inline (not as bound parameters) wherever the
# partial index ix_submissions_unfinished should serve: SQLite uses a partial index only for a
# query whose WHERE repeats the index's condition, and a parameter does not.
UNFINISHED_SQL = f"status IN ('{QUEUED}', '{PROCESSING}')"


def unfinished(status_column):
    """``status IN ('queued', 'processing')`` with the values inline (see UNFINISHED_SQL)."""
    return status_column.in_([literal_column(f"'{QUEUED}'"), literal_column(f"'{PROCESSING}'")])


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (
        Index("ix_submissions_account_received", "account_id", "received_at"),
        Index("ix_submissions_status", "status"),
        # The scheduler looks for completed deposits waiting to be indexed every few seconds.
        Index("ix_submissions_index_status", "index_status"),
        # The web dashboard: an account's submissions in one state, oldest or newest first.
        Index("ix_submissions_account_status_received", "account_id", "status", "received_at"),
        # The worker's claim, several times a second: the few unfinished submissions among (at ten
        # million DOIs) hundreds of thousands of completed ones. ANALYZE sees one common status value,
        # so SQLite scanned the table rather than use ix_submissions_status (0.8 s a claim at 1,000,000
        # submissions); a partial index holds only the unfinished ones.
        Index("ix_submissions_unfinished", "status", sqlite_where=text(UNFINISHED_SQL),
              postgresql_where=text(UNFINISHED_SQL)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(16), default="deposit")  # deposit | query
    operation: Mapped[str] = mapped_column(String(32), default="doMDUpload")
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    file_name: Mapped[str] = mapped_column(String(512), default="")
    doi_batch_id: Mapped[str | None] = mapped_column(String(255), index=True)
    namespace: Mapped[str | None] = mapped_column(String(255))
    depositor_email: Mapped[str | None] = mapped_column(String(320))
    batch_timestamp: Mapped[str | None] = mapped_column(String(32))
    storage_path: Mapped[str] = mapped_column(String(1024), default="")
    byte_size: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    record_count: Mapped[int] = mapped_column(Integer, default=0)
    success_count: Mapped[int] = mapped_column(Integer, default=0)
    warning_count: Mapped[int] = mapped_column(Integer, default=0)
    failure_count: Mapped[int] = mapped_column(Integer, default=0)
    records_done: Mapped[int] = mapped_column(Integer, default=0)
    refusal_kind: Mapped[str | None] = mapped_column(String(32))
    refusal: Mapped[str | None] = mapped_column(Text)  # JSON list of errors
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_slice_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Slices that raised (reset by a retry), when the next may start, and the last reason.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    # Metadata database load (issue: MDDB): pending | indexed | failed.
    index_status: Mapped[str | None] = mapped_column(String(16))
    indexed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_finished(self) -> bool:
        return self.status in (COMPLETED, REFUSED, FAILED)


class RecordResult(Base):
    """The outcome of one record, committed with the handle writes it caused.

    Committing both together is what lets a restarted worker resume a batch
    exactly where a crash left it.
    """

    __tablename__ = "record_results"

    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    doi: Mapped[str] = mapped_column(String(2048))
    status: Mapped[str] = mapped_column(String(16))  # Success | Warning | Failure
    message: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(32))  # added, updated, stale, prefix, invalid, duplicate
