"""The handle store: one row per DOI name, and its Handle.Net-style values."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from agency.models.base import Base
from agency.models.types import UTCDateTime


class Handle(Base):
    """A registered DOI name.

    ``key`` is the case-folded name that uniqueness and look-ups use; ``name``
    keeps the registrant's spelling. ``version`` is the deposit timestamp,
    zero-padded to 19 digits so that text order is numeric order in every
    database (19 digits do not fit a signed 64-bit integer). ``interface`` says
    which interface manages the DOI (``crossref`` deposits, newer timestamp wins;
    ``datacite``, the MDS API, last write wins); the other one may not change it.
    """

    __tablename__ = "handles"

    key: Mapped[str] = mapped_column(String(2048), primary_key=True)
    name: Mapped[str] = mapped_column(String(2048))
    prefix: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[str] = mapped_column(String(19))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    submission_id: Mapped[int] = mapped_column(Integer)
    interface: Mapped[str] = mapped_column(String(16), default="crossref", server_default="crossref")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HandleValue(Base):
    """One typed value of a handle record (URL at index 1, HS_ADMIN at 100)."""

    __tablename__ = "handle_values"

    handle_key: Mapped[str] = mapped_column(
        String(2048), ForeignKey("handles.key", ondelete="CASCADE"), primary_key=True
    )
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(255))
    data: Mapped[str] = mapped_column(Text)
    ttl: Mapped[int] = mapped_column(Integer)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
