"""Transfers of DOIs (a list, a title's, a prefix's) from one account to another (Handbook 9.1.5)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from agency.models.base import Base
from agency.models.types import UTCDateTime, utcnow

OPEN, COMPLETED, WITHDRAWN = "open", "completed", "withdrawn"


class Transfer(Base):
    __tablename__ = "transfers"

    id: Mapped[int] = mapped_column(primary_key=True)
    from_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    to_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    scope: Mapped[str] = mapped_column(String(16))  # dois | title | prefix
    scope_value: Mapped[str | None] = mapped_column(String(64))  # the ISSN/ISBN or the prefix
    status: Mapped[str] = mapped_column(String(16), default=OPEN, index=True)
    opened_by: Mapped[str] = mapped_column(String(200))  # the audit actor
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    from_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    to_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(200))


class TransferItem(Base):
    """One DOI a transfer moves; ``open_key`` is the DOI key while the transfer is open, so no two
    open transfers can hold the same DOI (a unique index decides, under concurrency too)."""

    __tablename__ = "transfer_items"
    __table_args__ = (Index("ux_transfer_items_open_key", "open_key", unique=True),)

    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfers.id", ondelete="CASCADE"), primary_key=True)
    doi_key: Mapped[str] = mapped_column(String(2048), primary_key=True)
    open_key: Mapped[str | None] = mapped_column(String(2048))
