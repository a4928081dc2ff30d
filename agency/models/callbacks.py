"""Notification callbacks: where an account wants to be told, and each notice on its way there."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from agency.models.base import Base
from agency.models.outbox import PENDING
from agency.models.types import UTCDateTime, utcnow


class CallbackTarget(Base):
    """An account's notify-url and notify-endpoint (Crossref's names), and the secret its notices are signed with."""

    __tablename__ = "callback_targets"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    endpoint: Mapped[str] = mapped_column(String(255))
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CallbackDelivery(Base):
    """One notice: pending until the receiver answers 2xx (sent) or attempts run out (dead, kept visible).

    The URL, headers and signature are fixed when the notice is written, in the
    transaction that made the result ready, so every attempt sends the same request.
    ``key`` names the event (one notice per event); ``claimed_by``/``claimed_until``
    are a sender's lease, as in the mail outbox.
    """

    __tablename__ = "callback_deliveries"
    __table_args__ = (Index("ix_callback_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    event: Mapped[str] = mapped_column(String(32))  # deposit_log | query_result | combined_diagnostic
    url: Mapped[str] = mapped_column(String(2048))
    headers: Mapped[str] = mapped_column(Text)  # JSON object, sent as given
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
