"""The handle store: one row per DOI name, and its Handle.Net-style values."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger, Boolean, Float, ForeignKey, Index, Integer, LargeBinary, SmallInteger, String, Text, text,
)
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
    # A prefix's handles in name order, from the index alone: a page of `/api/handles?prefix=` skips index
    # entries, not rows, and costs the same however many other prefixes the agency holds.
    # On SQLite the row is stored in its key's B-tree (WITHOUT ROWID, migration 0015): a look-up descends
    # one tree instead of the key's index and then the rowid table.
    __table_args__ = (Index("ix_handles_prefix_key", "prefix", "key"), {"sqlite_with_rowid": False})

    key: Mapped[str] = mapped_column(String(2048), primary_key=True)
    name: Mapped[str] = mapped_column(String(2048))
    prefix: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(19))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    submission_id: Mapped[int] = mapped_column(Integer)
    interface: Mapped[str] = mapped_column(String(16), default="crossref", server_default="crossref")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HandleCount(Base):
    """A number of handles to add to a prefix's count: its count is the sum of its rows.

    Kept by triggers on ``handles`` (migration 0016), never by the code that writes
    handles, so no write path can miss one. On PostgreSQL every statement that adds
    or removes handles adds a row per prefix (writers never wait on a shared
    counter) and ``agency.handles.counts`` folds a prefix's rows into one; on SQLite
    the trigger keeps one row per prefix. A schema made by ``create_all`` has no
    triggers: agency's databases are made by the migrations.
    """

    __tablename__ = "handle_counts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(64), index=True)
    handles: Mapped[int] = mapped_column(BigInteger)


class HandleValue(Base):
    """One value of a handle record as RFC 3651 defines it (URL at index 1, HS_ADMIN at 100, ...).

    ``data`` is the value's bytes exactly as the Handle protocol carries them
    (HS_ADMIN, HS_VLIST, HS_SITE in their RFC 3651 encoding); ``refs`` is
    Handle.Net's text form of the references (``index:handle``, tab-separated).
    Everything beyond index, type, data, TTL and timestamp has a server default,
    so the deposit path's bulk insert of URL values names only those.
    """

    __tablename__ = "handle_values"
    __table_args__ = (
        # The HS_ALIAS values (index 3, ``handles.store.ALIAS_INDEX``) alone: the depositor report joins them to
        # a prefix's handles, which otherwise read every value of the agency to find the few aliases.
        Index("ix_handle_values_alias", "handle_key",
              sqlite_where=text("idx = 3"), postgresql_where=text("idx = 3")),
        {"sqlite_with_rowid": False},  # as ``handles``: a handle's values are one range of one tree
    )

    handle_key: Mapped[str] = mapped_column(
        String(2048), ForeignKey("handles.key", ondelete="CASCADE"), primary_key=True
    )
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(255))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    ttl_type: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    ttl: Mapped[int] = mapped_column(Integer)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    refs: Mapped[str] = mapped_column(Text, server_default=text("''"))
    admin_read: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    admin_write: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    pub_read: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    pub_write: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class HandleChallenge(Base):
    """An open HS_SECKEY challenge of the Handle protocol server: the request it guards, as received.

    Kept in the database so that the answer, which clients send on a new
    connection, may reach any server process; taken (deleted) once, expired by age.
    """

    __tablename__ = "handle_challenges"

    session_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    request: Mapped[bytes] = mapped_column(LargeBinary)  # envelope and message
    issued: Mapped[float] = mapped_column(Float, index=True)  # seconds since 1970
