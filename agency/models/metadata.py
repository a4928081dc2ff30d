"""The metadata database (MDDB): what queries match against, loaded from batches/ on a schedule.

One row per registered DOI in ``metadata_records`` (its newest successful
deposit wins, by the same 19-digit version as the handle store), with its
contributors and ISSN/ISBN identifiers in their own tables. Every text a query
compares is stored twice: as deposited (for answers) and as a ``*_key``
computed by ``agency.metadata.text_keys`` (for look-ups), so the matcher computes the
same keys from the query and meets the index with plain equality.

The load's own bookkeeping lives here too: which batch folders were loaded
(``mddb_loads``), a lease lock so one load runs at a time across processes
(``job_locks``) and each scheduled job's last run (``job_runs``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from agency.models.base import Base
from agency.models.types import UTCDateTime, utcnow

KEY = 512  # normalized keys are cut to this length (agency.metadata.text_keys.MAX_KEY_LENGTH)


def _where_present(column: str) -> dict:
    """A partial index over the rows that have ``column``: for columns most records leave
    empty (abbreviated titles, book titles among journal articles). Smaller, and the
    planners' statistics then describe the values looked up, not a mass of NULLs that
    made SQLite's planner prefer scanning the table to probing the index."""
    condition = text(f"{column} IS NOT NULL")
    return {"sqlite_where": condition, "postgresql_where": condition}


class MetadataRecord(Base):
    """The indexed metadata of one DOI, from the newest batch that registered it."""

    __tablename__ = "metadata_records"
    __table_args__ = (
        # Journal look-ups: title (full or abbreviated) + volume + first page; ISSN + volume +
        # first page go through metadata_locators.
        Index("ix_mdrec_journal_vol_page", "journal_title_key", "volume_key", "first_page_key"),
        Index("ix_mdrec_abbrev_vol_page", "journal_abbrev_key", "volume_key", "first_page_key",
              **_where_present("journal_abbrev_key")),
        # The year rides along so that a look-up by page and volume leaves the records of other
        # years (ruled out by scoring anyway) in the index, unread.
        Index("ix_mdrec_page_vol_year", "first_page_key", "volume_key", "year"),
        # Book/proceedings (volume) and series titles.
        Index("ix_mdrec_volume_title", "volume_title_key", **_where_present("volume_title_key")),
        Index("ix_mdrec_series_title", "series_title_key", **_where_present("series_title_key")),
        # Author + year (+ first page), the usual fallback when nothing else found the record;
        # with the page in the index a miss costs one probe, not a walk over the author's year.
        # The volume rides along for the same reason as the year above: a citation of a volume
        # that has no such article reads only index entries, however common the surname.
        # (Only indexes the matcher's look-ups use: each one is paid for by every record loaded.)
        Index("ix_mdrec_author_year_page_vol", "first_author_key", "year", "first_page_key", "volume_key"),
    )

    doi_key: Mapped[str] = mapped_column(String(2048), primary_key=True)  # agency.handles.doi_syntax.doi_key
    doi: Mapped[str] = mapped_column(String(2048))  # as deposited
    prefix: Mapped[str] = mapped_column(String(64))
    url: Mapped[str | None] = mapped_column(Text)  # None for pending_publication
    content_type: Mapped[str] = mapped_column(String(64))  # element carrying doi_data: journal_article, ...
    body_type: Mapped[str] = mapped_column(String(64))  # child of <body>: journal, book, conference, ...
    publication_type: Mapped[str | None] = mapped_column(String(64))  # book_type, publication_type attr, ...
    title: Mapped[str | None] = mapped_column(Text)  # article / chapter / item title
    title_key: Mapped[str | None] = mapped_column(String(KEY))
    journal_title: Mapped[str | None] = mapped_column(Text)
    journal_title_key: Mapped[str | None] = mapped_column(String(KEY))
    journal_abbrev: Mapped[str | None] = mapped_column(Text)
    journal_abbrev_key: Mapped[str | None] = mapped_column(String(KEY))
    series_title: Mapped[str | None] = mapped_column(Text)
    series_title_key: Mapped[str | None] = mapped_column(String(KEY))
    volume_title: Mapped[str | None] = mapped_column(Text)  # book title / proceedings title
    volume_title_key: Mapped[str | None] = mapped_column(String(KEY))
    volume: Mapped[str | None] = mapped_column(String(255))
    volume_key: Mapped[str | None] = mapped_column(String(255))
    issue: Mapped[str | None] = mapped_column(String(255))
    issue_key: Mapped[str | None] = mapped_column(String(255))
    first_page: Mapped[str | None] = mapped_column(String(255))
    first_page_key: Mapped[str | None] = mapped_column(String(255))
    last_page: Mapped[str | None] = mapped_column(String(255))
    edition_number: Mapped[str | None] = mapped_column(String(64))
    component_number: Mapped[str | None] = mapped_column(String(255))
    year: Mapped[int | None] = mapped_column(Integer)
    publisher: Mapped[str | None] = mapped_column(Text)  # publisher_name, else the batch head's registrant
    registrant: Mapped[str | None] = mapped_column(Text)  # <registrant> of the batch head
    depositor_login: Mapped[str] = mapped_column(String(255))  # the account folder under batches/
    first_author_surname: Mapped[str | None] = mapped_column(Text)
    first_author_key: Mapped[str | None] = mapped_column(String(KEY))
    version: Mapped[str] = mapped_column(String(19))  # deposit timestamp, zero-padded to 19 digits
    submission_id: Mapped[int | None] = mapped_column(Integer)
    batch_folder: Mapped[str] = mapped_column(String(1024))  # <login>/<yyyy>/<mm>/<id>
    indexed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MetadataContributor(Base):
    """One contributor of a record, in deposit order (position 1 is listed first)."""

    __tablename__ = "metadata_contributors"

    doi_key: Mapped[str] = mapped_column(
        String(2048), ForeignKey("metadata_records.doi_key", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # person | organization
    role: Mapped[str | None] = mapped_column(String(64))  # author, editor, chair, translator, ...
    sequence: Mapped[str | None] = mapped_column(String(16))  # first | additional, as deposited
    is_first_author: Mapped[bool] = mapped_column(Boolean, default=False)
    surname: Mapped[str | None] = mapped_column(Text)  # or the organization's name
    given_name: Mapped[str | None] = mapped_column(Text)
    surname_key: Mapped[str | None] = mapped_column(String(KEY))  # agency.metadata.text_keys.name_key
    orcid: Mapped[str | None] = mapped_column(String(255))


class MetadataIdentifier(Base):
    """An ISSN or ISBN of a record, canonical (ISSN ``NNNN-NNNC``, ISBN 13 digits)."""

    __tablename__ = "metadata_identifiers"
    __table_args__ = (Index("ix_mdident_value", "kind", "value"),)

    doi_key: Mapped[str] = mapped_column(
        String(2048), ForeignKey("metadata_records.doi_key", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # issn | isbn
    value: Mapped[str] = mapped_column(String(32), primary_key=True)
    media_type: Mapped[str | None] = mapped_column(String(16))  # print | electronic
    valid_check_digit: Mapped[bool] = mapped_column(Boolean)
    raw: Mapped[str] = mapped_column(String(255))  # as deposited


class MetadataLocator(Base):
    """How citations name a journal article: (ISSN, volume, first page), one row per ISSN.

    The key of the first look-up of a journal query, so that it is one index probe
    whatever the number of journals sharing a volume and page number.
    """

    __tablename__ = "metadata_locators"

    issn: Mapped[str] = mapped_column(String(32), primary_key=True)
    volume_key: Mapped[str] = mapped_column(String(KEY), primary_key=True)
    first_page_key: Mapped[str] = mapped_column(String(KEY), primary_key=True)
    doi_key: Mapped[str] = mapped_column(
        String(2048), ForeignKey("metadata_records.doi_key", ondelete="CASCADE"), primary_key=True, index=True)


class MetadataJournalTitle(Base):
    """A title a journal was deposited under, by ISSN: its full and abbreviated titles, learnt from deposits.

    Citations name a journal by any of its forms ("Proc. X", "X Proceedings",
    "Proceedings of the X Conferences"); the matcher compares a query's title
    with every form deposited under the candidate's ISSNs, finds records by a
    form they do not carry themselves, and knows which ISSNs are journals
    this agency holds. Rows are only added: a title once deposited stays a
    variant when a later deposit replaces the record.
    """

    __tablename__ = "metadata_journal_titles"
    __table_args__ = (Index("ix_mdjtitle_title", "title_key"),)

    issn: Mapped[str] = mapped_column(String(32), primary_key=True)  # canonical NNNN-NNNC
    title_key: Mapped[str] = mapped_column(String(KEY), primary_key=True)  # text_keys.title_key


class MetadataCount(Base):
    """A number of records to add to the metadata database's count (PostgreSQL): the count is the rows' sum.

    Kept by statement-level triggers on ``metadata_records`` (migration 0018), as
    ``handle_counts`` is kept on ``handles``, and folded by ``agency.metadata.record_count``.
    The staff console shows the number on every page load; counting 10,000,000 records took
    PostgreSQL over a second. Unused on SQLite, which counts a table from its pages' headers.
    """

    __tablename__ = "metadata_counts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    records: Mapped[int] = mapped_column(BigInteger)


class MddbLoad(Base):
    """One batch folder's load: keyed by the folder, remembering the log it loaded (sha256).

    Kept apart from ``submissions`` so a copy of batches/ loads into an empty
    database, and so a reload of the same log is recognized and skipped.
    """

    __tablename__ = "mddb_loads"

    folder: Mapped[str] = mapped_column(String(1024), primary_key=True)  # <login>/<yyyy>/<mm>/<id>
    log_sha256: Mapped[str] = mapped_column(String(64))
    log_size: Mapped[int] = mapped_column(BigInteger, default=0)  # with log_mtime_ns: skip re-hashing
    log_mtime_ns: Mapped[int] = mapped_column(BigInteger, default=0)  # unchanged logs on every run
    status: Mapped[str] = mapped_column(String(16), index=True)  # loaded | refused | failed
    submission_id: Mapped[int | None] = mapped_column(Integer)
    batch_id: Mapped[str | None] = mapped_column(String(255))
    record_count: Mapped[int] = mapped_column(Integer, default=0)  # records in the deposit log
    registered_count: Mapped[int] = mapped_column(Integer, default=0)  # Success/Warning in the log
    indexed_count: Mapped[int] = mapped_column(Integer, default=0)
    warning_count: Mapped[int] = mapped_column(Integer, default=0)
    failure_count: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)  # why the folder could not be loaded
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobLock(Base):
    """A named lease: whoever holds an unexpired row runs the job; others skip it."""

    __tablename__ = "job_locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(255))
    acquired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JobRun(Base):
    """The last run of a scheduled job, so a restarted scheduler knows whether a run was missed."""

    __tablename__ = "job_runs"

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[str | None] = mapped_column(String(16))  # ok | failed | skipped
    last_summary: Mapped[str | None] = mapped_column(Text)
