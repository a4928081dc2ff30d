"""Title records: who owns a journal, book or series, by its ISSNs and ISBNs.

``title_identifiers`` has one row per identifier with the identifier as its key,
so the database decides ownership: of two accounts racing to deposit a new
ISSN, one insert wins and the other finds the winner's row.
``citation_keys`` remembers each journal article's query-able metadata (ISSN,
volume, issue, first page, year) to tell a depositor when another DOI already
carries the same ("Added with conflict").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from agency.models.base import Base
from agency.models.types import UTCDateTime, utcnow


class TitleRecord(Base):
    __tablename__ = "title_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # journal | book | series | conference
    title: Mapped[str] = mapped_column(Text)  # as first deposited
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TitleIdentifier(Base):
    """An ISSN (``NNNN-NNNC``) or ISBN (13 digits) and the title record that owns it."""

    __tablename__ = "title_identifiers"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # issn | isbn
    value: Mapped[str] = mapped_column(String(32), primary_key=True)
    title_id: Mapped[int] = mapped_column(ForeignKey("title_records.id", ondelete="CASCADE"), index=True)


class CitationKey(Base):
    """A registered journal article's ``issn|volume|issue|first page|year``."""

    __tablename__ = "citation_keys"

    doi_key: Mapped[str] = mapped_column(String(2048), primary_key=True)
    key: Mapped[str] = mapped_column(String(700), index=True)
    doi: Mapped[str] = mapped_column(String(2048))
