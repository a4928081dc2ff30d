"""Which account owns which DOI prefix, and which prefixes now live at another agency.

A prefix is owned by one account at a time (its primary key says so). Removing a
prefix that still has DOIs is refused with their count: the DOIs would be left
without anyone allowed to update them (move them with a transfer instead).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from agency.accounts import PREFIX_PATTERN, AccountError
from agency.admin.accounts import Change, account_by_login, audited_change
from agency.admin.audit import Actor
from agency.handles.counts import prefix_count, prefix_counts
from agency.models import Account, Prefix

MAX_SERVICE_CHARS = 500


@dataclass(frozen=True)
class PrefixSummary:
    prefix: str
    owner: str
    dois: int
    served_elsewhere: str | None


def normalized_prefix(prefix: str) -> str:
    prefix = prefix.strip().lower()
    if not PREFIX_PATTERN.match(prefix):
        raise AccountError(f"prefix {prefix!r} is not a DOI prefix (10.NNNN)")
    return prefix


def add(session: Session, actor: Actor, login: str, prefix: str, reason: str | None = None) -> Change:
    prefix = normalized_prefix(prefix)
    account = account_by_login(session, login)
    owner = session.get(Prefix, prefix, with_for_update=True)
    if owner is not None:
        holder = session.get(Account, owner.account_id).login
        raise AccountError(f"prefix {prefix} belongs to account {holder!r} already"
                           + ("" if holder != login else " (nothing to do)")
                           + ("" if holder == login else "; move it with `agency transfers open --prefix`"))
    session.add(Prefix(prefix=prefix, account_id=account.id))
    return audited_change(session, actor, "prefix.add", f"prefix:{prefix}", account_id=account.id,
                          before=None, after={"owner": login}, reason=reason)


def remove(session: Session, actor: Actor, prefix: str, reason: str | None = None) -> Change:
    prefix = normalized_prefix(prefix)
    row = session.get(Prefix, prefix, with_for_update=True)
    if row is None:
        raise AccountError(f"prefix {prefix} is not served here")
    count = prefix_count(session, prefix)
    if count:
        raise AccountError(f"prefix {prefix} still has {count} DOI(s): refused (transfer them to another "
                           "account, or export the prefix, first)")
    login = session.get(Account, row.account_id).login
    session.delete(row)
    return audited_change(session, actor, "prefix.remove", f"prefix:{prefix}", account_id=row.account_id,
                          before={"owner": login}, after=None, reason=reason)


def list_prefixes(session: Session, login: str | None = None) -> list[PrefixSummary]:
    counts = prefix_counts(session)
    query = select(Prefix.prefix, Account.login, Prefix.served_elsewhere).join(
        Account, Account.id == Prefix.account_id).order_by(Prefix.prefix)
    if login is not None:
        query = query.where(Account.login == login)
    return [PrefixSummary(p, owner, counts.get(p, 0), elsewhere) for p, owner, elsewhere in session.execute(query)]


def mark_served_elsewhere(session: Session, actor: Actor, prefix: str, service: str | None,
                          reason: str | None = None) -> Change:
    """Record that another agency now serves the prefix (``service`` names it), or, with None, that it is back."""
    prefix = normalized_prefix(prefix)
    if service is not None:
        service = service.strip()
        if not service or len(service) > MAX_SERVICE_CHARS:
            raise AccountError(f"name the service that now serves {prefix} (1 to {MAX_SERVICE_CHARS} characters)")
    row = session.get(Prefix, prefix, with_for_update=True)
    if row is None:
        raise AccountError(f"prefix {prefix} is not served here")
    before = row.served_elsewhere
    row.served_elsewhere = service
    return audited_change(session, actor, "prefix.served-elsewhere", f"prefix:{prefix}", account_id=row.account_id,
                          before={"served_elsewhere": before}, after={"served_elsewhere": service}, reason=reason)
