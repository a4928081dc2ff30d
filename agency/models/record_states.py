"""What the registration agency has done to registered DOIs: aliases, withdrawals and version resets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from agency.models.base import Base
from agency.models.types import UTCDateTime, utcnow


class AliasLink(Base):
    """An alias and its primary, beside the alias's HS_ALIAS value (``handles.store`` writes both together).

    A small table of its own, so that the deposit path can tell in one cheap look-up
    per chunk that none of its DOIs is an alias, however large the handle store.
    """

    __tablename__ = "alias_links"

    alias_key: Mapped[str] = mapped_column(String(2048), ForeignKey("handles.key"), primary_key=True)
    target: Mapped[str] = mapped_column(String(2048))  # the primary DOI as stored


class Withdrawal(Base):
    """A DOI pointed at agency's tombstone page; one row per DOI, kept when reinstated (``active`` false)."""

    __tablename__ = "withdrawals"
    __table_args__ = (Index("ix_withdrawals_active", "active", "handle_key"),)

    handle_key: Mapped[str] = mapped_column(String(2048), ForeignKey("handles.key"), primary_key=True)
    doi: Mapped[str] = mapped_column(String(2048))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    reason: Mapped[str] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)  # from the metadata index when withdrawn
    previous_url: Mapped[str | None] = mapped_column(Text)  # what reinstating restores
    withdrawn_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reinstated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class VersionReset(Base):
    """A stored version lowered by the RA; ``noted_submission_id`` is the deposit whose log said so."""

    __tablename__ = "version_resets"
    __table_args__ = (Index("ix_version_resets_pending", "noted_submission_id", "handle_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    handle_key: Mapped[str] = mapped_column(String(2048), ForeignKey("handles.key"))
    from_version: Mapped[str] = mapped_column(String(19))
    to_version: Mapped[str] = mapped_column(String(19))
    reason: Mapped[str] = mapped_column(Text)
    reset_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    noted_submission_id: Mapped[int | None] = mapped_column(Integer)


class MetadataResource(Base):
    """One part of a DOI's record added by a resource-only deposit, as deposited (the newest per part).

    Parts: doi_resources (collections of URLs), doi_citations, fundref_data,
    lic_ref_data, crossmark_data, doi_relations, clinicaltrial_data.
    """

    __tablename__ = "metadata_resources"

    doi_key: Mapped[str] = mapped_column(String(2048), primary_key=True)
    part: Mapped[str] = mapped_column(String(32), primary_key=True)
    doi: Mapped[str] = mapped_column(String(2048))
    xml: Mapped[str] = mapped_column(Text)  # the body item, serialised
    submission_id: Mapped[int | None] = mapped_column(Integer)
    batch_folder: Mapped[str] = mapped_column(String(1024))
    indexed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
