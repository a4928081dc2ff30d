"""Withdrawing a DOI (operator): it resolves to a tombstone page agency serves; nothing is deleted.

DOIs are never deleted (the DOI Handbook and Crossref both require it). A
withdrawn DOI keeps its handle and its metadata; its URL value points at
``{base_url}/withdrawn/{doi}``, a page naming the DOI, its title, the reason
and the date; the metadata index's URL follows, so metadata pages and piped
queries answer the tombstone too. Reinstating restores the URL it had, in both. Both are audited in the
transaction that makes them; while withdrawn, deposits, resource deposits and
URL updates for the DOI are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from agency.admin.audit import MAX_REASON_CHARS, Actor, record_event
from agency.handles.doi_syntax import doi_key
from agency.handles.store import clear_url, current_url, handle_states, replace_urls
from agency.metadata.index import index_urls
from agency.models import MetadataRecord, Withdrawal
from agency.models.types import utcnow

TOMBSTONE_PATH = "/withdrawn/"


class WithdrawalError(Exception):
    """A withdrawal or reinstatement that cannot be done; the message says why."""


@dataclass(frozen=True)
class Tombstone:
    doi: str
    title: str | None
    reason: str
    withdrawn_at: datetime


def tombstone_url(base_url: str, doi: str) -> str:
    return base_url.rstrip("/") + TOMBSTONE_PATH + quote(doi, safe="/")


def _reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise WithdrawalError("A reason is required: it is shown on the tombstone page and kept in the audit trail.")
    if len(reason) > MAX_REASON_CHARS:
        raise WithdrawalError(f"A reason is at most {MAX_REASON_CHARS} characters.")
    return reason


def withdraw(session: Session, actor: Actor, doi: str, reason: str | None, base_url: str, ttl: int) -> Tombstone:
    """Point ``doi`` at its tombstone, keeping what it resolved to; in the caller's transaction."""
    reason = _reason(reason)
    key = doi_key(doi)
    state = handle_states(session, [key]).get(key)
    if state is None:
        raise WithdrawalError(f"{doi} is not registered here.")
    if state.withdrawn:
        raise WithdrawalError(f"{state.name} is withdrawn already.")
    title = session.scalar(select(MetadataRecord.title).where(MetadataRecord.doi_key == key))
    previous = current_url(session, key)
    row = session.get(Withdrawal, key) or Withdrawal(handle_key=key)
    row.doi, row.active, row.reason, row.title = state.name, True, reason, title
    row.previous_url, row.withdrawn_at, row.reinstated_at = previous, utcnow(), None
    session.add(row)
    replace_urls(session, [(key, tombstone_url(base_url, state.name))], ttl)
    index_urls(session, [(key, tombstone_url(base_url, state.name))])
    record_event(session, actor, "doi.withdraw", f"doi:{state.name}", account_id=state.account_id,
                 before={"url": previous}, after={"url": tombstone_url(base_url, state.name)}, reason=reason)
    return Tombstone(state.name, title, reason, row.withdrawn_at)


def reinstate(session: Session, actor: Actor, doi: str, reason: str | None, ttl: int) -> str | None:
    """Undo a withdrawal: the DOI resolves where it did before; returns that URL."""
    reason = _reason(reason)
    key = doi_key(doi)
    row = session.get(Withdrawal, key)
    if row is None or not row.active:
        raise WithdrawalError(f"{doi} is not withdrawn.")
    if row.previous_url is None:
        clear_url(session, key)
    else:
        replace_urls(session, [(key, row.previous_url)], ttl)
    index_urls(session, [(key, row.previous_url)])
    row.active, row.reinstated_at = False, utcnow()
    account_id = handle_states(session, [key])[key].account_id
    record_event(session, actor, "doi.reinstate", f"doi:{row.doi}", account_id=account_id,
                 before={"withdrawn_reason": row.reason}, after={"url": row.previous_url}, reason=reason)
    return row.previous_url


def tombstone(session: Session, doi: str) -> Tombstone | None:
    """What the tombstone page shows, while the DOI is withdrawn."""
    row = session.get(Withdrawal, doi_key(doi))
    if row is None or not row.active:
        return None
    return Tombstone(row.doi, row.title, row.reason, row.withdrawn_at)
