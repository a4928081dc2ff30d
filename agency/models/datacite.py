"""DOIs registered through DataCite's MDS API: their state, latest kernel-4 record, URL and media."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from agency.models.base import Base
from agency.models.types import UTCDateTime


class DataciteDoi(Base):
    """One DOI managed through the MDS API.

    ``state`` is DataCite's: ``draft`` (metadata only, not in the handle store),
    ``registered`` (resolves, metadata not public) or ``findable`` (resolves and
    is public). ``xml`` is the latest record as received (None after an operator
    converted a Crossref DOI and before any metadata was sent); ``submission_id``
    is the submission that received it, whose folder under batches/ keeps the
    body as ``datacite.xml`` (every body received is kept there, not only the
    latest). ``media`` is a JSON list of ``[mime type, url]`` pairs.
    """

    __tablename__ = "datacite_dois"
    # The drafts alone: every Crossref deposit chunk asks whether any of its DOIs is one
    # (agency.datacite.deposit_checks), and first whether there is any draft at all.
    __table_args__ = (Index("ix_datacite_drafts", "key", sqlite_where=text("state = 'draft'"),
                            postgresql_where=text("state = 'draft'")),)

    key: Mapped[str] = mapped_column(String(2048), primary_key=True)
    doi: Mapped[str] = mapped_column(String(2048))
    prefix: Mapped[str] = mapped_column(String(64), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    xml: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    media: Mapped[str] = mapped_column(Text, default="[]")
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MetadataRelation(Base):
    """A related identifier of an indexed record (DataCite's relatedIdentifier), in record order."""

    __tablename__ = "metadata_relations"

    doi_key: Mapped[str] = mapped_column(
        String(2048), ForeignKey("metadata_records.doi_key", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    identifier: Mapped[str] = mapped_column(Text)
    identifier_type: Mapped[str] = mapped_column(String(32))
    relation_type: Mapped[str] = mapped_column(String(64))
