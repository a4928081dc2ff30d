"""Where the protocol server finds handles: the agency's handle store, behind a small interface.

Reads used by resolution take one session each; prefixes served here are
cached for a few seconds (a new prefix is answered for within that time), so
a resolution costs one query. Prefix records (``0.NA/<prefix>``) come from the
store when they have been created there (``agency prefixes create``), else they
are derived from the prefix's owner as the REST API shows them.
"""

from __future__ import annotations

import threading
import time
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from agency.db import Database
from agency.handles.editing import PREFIX_NAMESPACE, handle_prefix
from agency.handles.store import handle_values
from agency.handles.values import HandleValue
from agency.models import Account, Prefix

PREFIX_CACHE_SECONDS = 5.0


class StoreDirectory:
    def __init__(self, db: Database, ttl: int) -> None:
        self.db = db
        self.ttl = ttl
        self._prefixes: frozenset[str] = frozenset()
        self._loaded = 0.0
        self._lock = threading.Lock()

    def served_prefixes(self) -> frozenset[str]:
        now = time.monotonic()
        if now - self._loaded > PREFIX_CACHE_SECONDS:
            with self._lock:
                if now - self._loaded > PREFIX_CACHE_SECONDS:
                    with self.db.sessions() as session:
                        self._prefixes = frozenset(session.scalars(select(Prefix.prefix)))
                    self._loaded = time.monotonic()
        return self._prefixes

    def forget_prefixes(self) -> None:
        self._loaded = 0.0

    def serves(self, handle: str) -> bool:
        return handle_prefix(handle) in self.served_prefixes()

    def values(self, handle: str) -> list[HandleValue] | None:
        """Every value of ``handle`` (public or not), or None when it does not exist."""
        with self.db.sessions() as session:
            return self.values_in(session, handle)

    def values_in(self, session: Session, handle: str) -> list[HandleValue] | None:
        return record_values(session, handle, self.ttl)

    def values_reader(self, session: Session):
        """``handle -> values`` for admin group look-ups inside one transaction."""
        def values_of(handle: str) -> Sequence[HandleValue]:
            return self.values_in(session, handle) or []
        return values_of


def record_values(session: Session, handle: str, ttl: int) -> list[HandleValue] | None:
    """Every value of ``handle`` (public or not); a prefix record not stored yet is derived from its owner."""
    found = handle_values(session, handle)
    if found:
        return found
    if not handle.upper().startswith(PREFIX_NAMESPACE):
        return None
    from agency.handles.resolver import prefix_record_values

    prefix = handle_prefix(handle)
    created = session.scalar(select(Account.created_at).join(Prefix, Prefix.account_id == Account.id)
                             .where(Prefix.prefix == prefix))
    return None if created is None else prefix_record_values(prefix, created, ttl)
