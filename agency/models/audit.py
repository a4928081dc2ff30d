"""The audit trail: one append-only row per administrative change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from agency.models.base import Base
from agency.models.types import UTCDateTime, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_subject_at", "subject", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))  # "operator:NAME", "account:LOGIN" or "system"
    action: Mapped[str] = mapped_column(String(64))  # e.g. "account.disable", "transfer.complete"
    subject: Mapped[str] = mapped_column(String(2100))  # e.g. "account:press", "prefix:10.5555", "doi:10.5555/x"
    # The account the event is about, when there is one: what GET /v1/audit shows that account.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
