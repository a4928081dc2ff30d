"""Where the protocol server finds handles: the agency's handle store, behind a small interface.

Resolution reads a handle's values with one prepared query and encodes the
publicly readable ones straight from the rows (``public_values_encoded``);
other reads take one session each. The prefixes served here are kept for a few
seconds, so a resolution costs one query (a prefix not in the list is looked
up before the server says it is served elsewhere). Prefix records (``0.NA/<prefix>``) come from the
store when they have been created there (``agency prefixes create``), else they
are derived from the prefix's owner as the REST API shows them.
"""

from __future__ import annotations

import threading
import time
from functools import lru_cache
from typing import Sequence

from sqlalchemy import BigInteger, Integer, bindparam, cast, extract, func, select
from sqlalchemy.orm import Session

from agency.db import Database
from agency.handles.doi_syntax import doi_key
from agency.handles.editing import PREFIX_NAMESPACE, handle_prefix
from agency.handles.store import ADMIN_INDEX, DEFAULT_TTL, admin_value_data, handle_values, parse_refs
from agency.handles.values import (
    ADMIN_READ, ADMIN_WRITE, PUBLIC_READ, PUBLIC_WRITE, TTL_RELATIVE, HandleValue, encode_value,
)
from agency.models import Account, Handle, HandleValue as ValueRow, Prefix

PREFIX_CACHE_SECONDS = 5.0
_SERVED = select(Prefix.prefix).where(Prefix.served_elsewhere.is_(None))


class StoreDirectory:
    def __init__(self, db: Database, ttl: int) -> None:
        self.db = db
        self.ttl = ttl
        self._record = None
        self._prefixes: frozenset[str] = frozenset()
        self._loaded = 0.0
        self._lock = threading.Lock()

    def served_prefixes(self) -> frozenset[str]:
        """The prefixes answered for here: every prefix held by an account, except those another agency
        now serves (Handbook 9.1.6: their clients are sent there). Read again every few seconds."""
        now = time.monotonic()
        if now - self._loaded > PREFIX_CACHE_SECONDS:
            with self._lock:
                if now - self._loaded > PREFIX_CACHE_SECONDS:
                    with self.db.sessions() as session:
                        self._prefixes = frozenset(session.scalars(_SERVED))
                    self._loaded = time.monotonic()
        return self._prefixes

    def serves(self, handle: str) -> bool:
        """Whether ``handle``'s prefix is served here. A prefix missing from the list is looked up before the
        answer is no, so a prefix created a moment ago is served at once (a prefix removed or moved away is
        noticed within ``PREFIX_CACHE_SECONDS``). The look-up is one indexed read, as a handle that does not
        exist costs: asking for unserved prefixes costs a client no more than asking for absent handles."""
        prefix = handle_prefix(handle)
        if prefix in self.served_prefixes():
            return True
        with self.db.sessions() as session:
            served = session.scalar(_SERVED.where(Prefix.prefix == prefix)) is not None
        if served:
            self._loaded = 0.0  # read the whole list again at the next request
        return served

    def values(self, handle: str) -> list[HandleValue] | None:
        """Every value of ``handle`` (public or not), or None when it does not exist.

        One prepared statement on a per-thread connection (``resolver.FastLookUp``): the
        ORM path costs several times the query itself, and resolution is the hot path."""
        rows = self._rows(handle)
        if not rows:
            with self.db.sessions() as session:  # prefix records derived from their owner
                return self.values_in(session, handle)
        return values_of_rows(rows)

    def public_values_encoded(self, handle: str) -> list[tuple[int, str, bytes]] | None:
        """The publicly readable values of ``handle`` as (index, type, RFC 3652 encoding), in index order, or
        None when it does not exist: what resolution sends, encoded straight from the stored rows."""
        rows = self._rows(handle)
        if not rows:
            with self.db.sessions() as session:
                values = self.values_in(session, handle)
            return None if values is None else [(v.index, v.type, v.encode()) for v in values if v.public_read]
        return public_encoded_rows(rows)

    def _rows(self, handle: str) -> list:
        if self._record is None:
            from agency.handles.resolver import FastLookUp

            self._record = FastLookUp(self.db.engine, record_statement(self.db.engine.dialect.name))
        return self._record.rows(doi_key(handle))

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


def _epoch(column, dialect_name: str):
    if dialect_name == "sqlite":
        return cast(func.strftime("%s", column), Integer)
    return cast(func.floor(extract("epoch", column)), BigInteger)


def _admin_prefix():
    """The prefix whose admin group administers the handle, as ``store.admin_prefix`` decides it: the
    handle's own while its owner holds that prefix, else the owner's first (the DOI was transferred)."""
    own = select(Prefix.prefix).where(Prefix.prefix == Handle.prefix, Prefix.account_id == Handle.account_id)
    first = select(func.min(Prefix.prefix)).where(Prefix.account_id == Handle.account_id)
    return func.coalesce(own.scalar_subquery(), first.scalar_subquery(), Handle.prefix)


def record_statement(dialect_name: str):
    """A handle's row and its stored values in one query (times as seconds since 1970)."""
    return (select(_admin_prefix(), _epoch(Handle.created_at, dialect_name), ValueRow.idx, ValueRow.type,
                   ValueRow.data, ValueRow.ttl_type, ValueRow.ttl, _epoch(ValueRow.timestamp, dialect_name),
                   ValueRow.refs, ValueRow.admin_read, ValueRow.admin_write, ValueRow.pub_read, ValueRow.pub_write)
            .select_from(Handle).outerjoin(ValueRow, ValueRow.handle_key == Handle.key)
            .where(Handle.key == bindparam("key")).order_by(ValueRow.idx))


@lru_cache(maxsize=4096)
def _admin_data(prefix: str) -> bytes:
    return admin_value_data(prefix)


_ADMIN_PERMISSIONS = HandleValue(ADMIN_INDEX, "HS_ADMIN", b"").permissions  # the derived HS_ADMIN's, as below


def public_encoded_rows(rows) -> list[tuple[int, str, bytes]]:
    """What ``values_of_rows`` gives, the publicly readable values only, already encoded for the wire."""
    out = []
    derive_admin = True
    for r in rows:
        index = r[2]
        if index is None:
            continue
        if index == ADMIN_INDEX or r[3] == "HS_ADMIN":
            derive_admin = False
        if not r[11]:
            continue
        permissions = (ADMIN_READ if r[9] else 0) | (ADMIN_WRITE if r[10] else 0) | PUBLIC_READ \
            | (PUBLIC_WRITE if r[12] else 0)
        out.append((index, r[3], encode_value(index, r[3], bytes(r[4]), r[5], r[6], r[7] or 0,
                                              parse_refs(r[8]) if r[8] else (), permissions)))
    if derive_admin:
        first = next((r for r in rows if r[2] is not None), None)
        admin = encode_value(ADMIN_INDEX, "HS_ADMIN", _admin_data(rows[0][0]), TTL_RELATIVE,
                             first[6] if first else DEFAULT_TTL, rows[0][1] or 0, (), _ADMIN_PERMISSIONS)
        out.append((ADMIN_INDEX, "HS_ADMIN", admin))
        out.sort(key=lambda item: item[0])
    return out


def values_of_rows(rows) -> list[HandleValue]:
    """The same values ``store.handle_values`` gives, from ``record_statement``'s rows."""
    values = [HandleValue(r[2], r[3], bytes(r[4]), r[6], r[5], r[7] or 0, parse_refs(r[8]) if r[8] else (),
                          bool(r[9]), bool(r[10]), bool(r[11]), bool(r[12])) for r in rows if r[2] is not None]
    if any(v.type == "HS_ADMIN" or v.index == ADMIN_INDEX for v in values):
        return values
    prefix, created = rows[0][0], rows[0][1] or 0
    admin = HandleValue(ADMIN_INDEX, "HS_ADMIN", admin_value_data(prefix), values[0].ttl if values else DEFAULT_TTL,
                        timestamp=created)
    return sorted([*values, admin], key=lambda v: v.index)
