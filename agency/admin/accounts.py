"""Changes to registrant accounts: created, e-mail, password, disabled or not.

Each change is written with its audit event in the caller's transaction, and
returns a ``Change`` saying what it did, which the CLI prints. The ``agency``
command, the staff console and the registrant's own account page all call these,
so every path leaves the same events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from agency.accounts import EMAIL_PATTERN, AccountError, PasswordCheck, Registrant, create_account
from agency.admin.audit import Actor, record_event
from agency.models import Account, Handle, Prefix, Submission
from agency.models.submissions import PROCESSING, QUEUED
from agency.models.types import utcnow
from agency.notify import callbacks

MIN_PASSWORD_CHARS = 8
MAX_EMAIL_CHARS = 320


@dataclass(frozen=True)
class Change:
    """One administrative change as it was audited: what the CLI prints and the API returns."""

    action: str
    subject: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    event_id: int

    def line(self) -> str:
        def shown(values: dict[str, Any] | None) -> str:
            return ", ".join(f"{k}={v}" for k, v in (values or {}).items()) or "-"

        return f"{self.action} {self.subject}: {shown(self.before)} -> {shown(self.after)} (audit event {self.event_id})"


@dataclass(frozen=True)
class AccountSummary:
    login: str
    email: str
    disabled_at: datetime | None
    created_at: datetime
    prefixes: tuple[str, ...]
    dois: int
    waiting_submissions: int

    @property
    def state(self) -> str:
        return "disabled" if self.disabled_at else "enabled"


def audited_change(session: Session, actor: Actor, action: str, subject: str, *, account_id: int | None,
                   before: dict | None, after: dict | None, reason: str | None) -> Change:
    """Record the event and flush it, so the change can name its event number."""
    event = record_event(session, actor, action, subject, account_id=account_id, before=before, after=after,
                         reason=reason)
    session.flush()
    return Change(action, subject, before, after, event.id)


def account_by_login(session: Session, login: str, *, for_update: bool = False) -> Account:
    query = select(Account).where(Account.login == login)
    if for_update:
        query = query.with_for_update()
    account = session.scalar(query)
    if account is None:
        raise AccountError(f"no account {login!r}")
    return account


def list_accounts(session: Session) -> list[AccountSummary]:
    accounts = session.scalars(select(Account).order_by(Account.login).options(selectinload(Account.prefixes)))
    dois = dict(session.execute(select(Handle.account_id, func.count()).group_by(Handle.account_id)).all())
    waiting = dict(session.execute(
        select(Submission.account_id, func.count()).where(Submission.status.in_((QUEUED, PROCESSING)))
        .group_by(Submission.account_id)).all())
    return [AccountSummary(a.login, a.email, a.disabled_at, a.created_at, tuple(p.prefix for p in a.prefixes),
                           dois.get(a.id, 0), waiting.get(a.id, 0)) for a in accounts]


def show_account(session: Session, login: str) -> AccountSummary:
    [summary] = [s for s in list_accounts(session) if s.login == login] or [None]
    if summary is None:
        raise AccountError(f"no account {login!r}")
    return summary


def create(session: Session, passwords: PasswordCheck, actor: Actor, login: str, email: str, password: str,
           prefixes: list[str], reason: str | None = None) -> Registrant:
    """A new account with its prefixes (AccountError when the login or a prefix is taken)."""
    registrant = create_account(session, passwords, login, email, password, prefixes)
    record_event(session, actor, "account.create", f"account:{registrant.login}", account_id=registrant.id,
                 after={"login": registrant.login, "email": registrant.email,
                        "prefixes": sorted(registrant.prefixes)}, reason=reason)
    return registrant


def search_accounts(session: Session, text: str = "", limit: int = 100) -> list[Account]:
    """Accounts whose login or email contains the text, or that own a prefix starting with it."""
    query = select(Account).order_by(Account.login).limit(limit).options(selectinload(Account.prefixes))
    if text:
        pattern = f"%{text.lower()}%"
        owning = select(Prefix.account_id).where(Prefix.prefix.startswith(text.lower(), autoescape=True))
        query = query.where(Account.login.ilike(pattern) | Account.email.ilike(pattern) | Account.id.in_(owning))
    return list(session.scalars(query))


def set_email(session: Session, actor: Actor, login: str, email: str, reason: str | None = None) -> Change:
    email = email.strip()
    if not EMAIL_PATTERN.match(email) or len(email) > MAX_EMAIL_CHARS:
        raise AccountError(f"email {email!r} is not an email address")
    account = account_by_login(session, login, for_update=True)
    before = account.email
    account.email = email
    return audited_change(session, actor, "account.set-email", f"account:{login}", account_id=account.id,
                          before={"email": before}, after={"email": email}, reason=reason)


def set_password(session: Session, passwords: PasswordCheck, actor: Actor, login: str, password: str,
                 reason: str | None = None) -> Change:
    """A new password; the audit trail says it changed, never what it is."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"password must be at least {MIN_PASSWORD_CHARS} characters")
    account = account_by_login(session, login, for_update=True)
    account.password_hash = passwords.hash(password)
    return audited_change(session, actor, "account.passwd", f"account:{login}", account_id=account.id,
                          before=None, after={"password": "changed"}, reason=reason)


def change_own_password(session: Session, passwords: PasswordCheck, login: str, old: str, new: str) -> Change:
    """The registrant's own change (from the account page): the current password must be given and right."""
    account = account_by_login(session, login)
    if not passwords.verify(account.password_hash, old):
        raise AccountError("The current password is wrong.")
    return set_password(session, passwords, Actor.account(login), login, new)


def disable(session: Session, actor: Actor, login: str, reason: str | None = None) -> Change:
    """From now on the account authenticates nowhere; its queued submissions wait, they are not lost."""
    account = account_by_login(session, login, for_update=True)
    if account.disabled_at is not None:
        raise AccountError(f"account {login!r} is disabled already (since {account.disabled_at:%Y-%m-%d %H:%M} UTC)")
    account.disabled_at = utcnow()
    return audited_change(session, actor, "account.disable", f"account:{login}", account_id=account.id,
                          before={"state": "enabled"}, after={"state": "disabled"}, reason=reason)


def enable(session: Session, actor: Actor, login: str, reason: str | None = None) -> Change:
    account = account_by_login(session, login, for_update=True)
    if account.disabled_at is None:
        raise AccountError(f"account {login!r} is not disabled")
    account.disabled_at = None
    return audited_change(session, actor, "account.enable", f"account:{login}", account_id=account.id,
                          before={"state": "disabled"}, after={"state": "enabled"}, reason=reason)


def set_callback(session: Session, actor: Actor, login: str, url: str, endpoint: str, allow_private: bool):
    """Register or replace the account's notification callback (checked first; raises CallbackUrlError).

    Returns the target, whose secret the caller shows once when it is new."""
    url, endpoint = callbacks.check_callback(url, endpoint, allow_private)
    account = account_by_login(session, login)
    target, before = callbacks.set_target(session, account.id, url, endpoint)
    record_event(session, actor, "callback.set", f"account:{login}", account_id=account.id, before=before,
                 after=callbacks.describe_target(target))
    return target


def remove_callback(session: Session, actor: Actor, login: str) -> bool:
    """Remove the account's callback (pending notices are still delivered); False when there was none."""
    account = account_by_login(session, login)
    before = callbacks.remove_target(session, account.id)
    if before is None:
        return False
    record_event(session, actor, "callback.remove", f"account:{login}", account_id=account.id, before=before)
    return True
