"""Changes to registrant accounts made by staff or by the registrant, each written to the audit trail.

The staff console, the registrant's account page and the ``agency`` command all
go through these functions, so every path leaves the same events.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from agency.accounts import (EMAIL_PATTERN, AccountError, PasswordCheck, Registrant, add_prefix, create_account)
from agency.admin.audit import Actor, record_event
from agency.models import Account, Prefix
from agency.models.types import utcnow

MIN_PASSWORD_CHARS = 8


def _account(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise AccountError(f"no account {account_id}")
    return account


def create_audited(session: Session, passwords: PasswordCheck, actor: Actor, login: str, email: str,
                   password: str, prefixes: list[str]) -> Registrant:
    registrant = create_account(session, passwords, login, email, password, prefixes)
    record_event(session, actor, "account.create", f"account:{login}", account_id=registrant.id,
                 after={"login": login, "email": email, "prefixes": sorted(registrant.prefixes)})
    return registrant


def add_prefix_audited(session: Session, actor: Actor, account_id: int, prefix: str) -> None:
    account = _account(session, account_id)
    add_prefix(session, account, prefix)
    session.flush()
    record_event(session, actor, "prefix.add", f"prefix:{prefix.strip().lower()}", account_id=account.id,
                 after={"account": account.login})


def set_disabled(session: Session, actor: Actor, account_id: int, disabled: bool, reason: str | None = None) -> None:
    """Disable (no sign-in, no deposit) or enable an account again."""
    account = _account(session, account_id)
    before = {"disabled": account.disabled_at is not None}
    account.disabled_at = utcnow() if disabled else None
    record_event(session, actor, "account.disable" if disabled else "account.enable", f"account:{account.login}",
                 account_id=account.id, before=before, after={"disabled": disabled}, reason=reason)


def change_password(session: Session, passwords: PasswordCheck, account_id: int, old: str, new: str) -> None:
    """The registrant's own change: the old password must be right, the new one long enough."""
    account = _account(session, account_id)
    if not passwords.verify(account.password_hash, old):
        raise AccountError("The current password is wrong.")
    if len(new) < MIN_PASSWORD_CHARS:
        raise AccountError(f"The new password must be at least {MIN_PASSWORD_CHARS} characters.")
    account.password_hash = passwords.hash(new)
    record_event(session, Actor.account(account.login), "account.password", f"account:{account.login}",
                 account_id=account.id)


def change_email(session: Session, account_id: int, email: str) -> None:
    account = _account(session, account_id)
    email = email.strip()
    if not EMAIL_PATTERN.match(email) or len(email) > 320:
        raise AccountError(f"{email!r} is not an email address.")
    before = account.email
    account.email = email
    record_event(session, Actor.account(account.login), "account.email", f"account:{account.login}",
                 account_id=account.id, before={"email": before}, after={"email": email})


def search_accounts(session: Session, text: str = "", limit: int = 100) -> list[Account]:
    """Accounts whose login or email contains the text, or that own a prefix starting with it."""
    query = select(Account).order_by(Account.login).limit(limit)
    if text:
        pattern = f"%{text.lower()}%"
        owning = select(Prefix.account_id).where(Prefix.prefix.startswith(text.lower()))
        query = query.where(Account.login.ilike(pattern) | Account.email.ilike(pattern) | Account.id.in_(owning))
    return list(session.scalars(query))
