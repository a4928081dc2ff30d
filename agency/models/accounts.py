"""Registrant accounts and the DOI prefixes each one owns."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from agency.models.base import Base
from agency.models.types import UTCDateTime, utcnow


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(128), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set by RA staff (web console): a disabled account can no longer sign in or deposit.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    prefixes: Mapped[list["Prefix"]] = relationship(back_populates="account", order_by="Prefix.prefix")


class Prefix(Base):
    __tablename__ = "prefixes"

    prefix: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    account: Mapped[Account] = relationship(back_populates="prefixes")
