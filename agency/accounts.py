"""Registrant accounts: creation, password checks, prefix ownership."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from agency.models import Account, Prefix

PREFIX_PATTERN = re.compile(r"^10\.[0-9]+(\.[0-9]+)*$")
HANDLE_PREFIX_PATTERN = re.compile(r"^[1-9][0-9]*(\.[0-9]+)+$")
LOGIN_PATTERN = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+$")

# A well-formed hash checked when the login is unknown, so that a wrong login
# costs as much time as a wrong password and logins cannot be probed.
_DUMMY_PASSWORD = "not-a-real-password"


class AccountError(ValueError):
    """A request to create or change an account that cannot be honoured."""


@dataclass(frozen=True)
class Registrant:
    """What the rest of the agency needs to know about an authenticated account."""

    id: int
    login: str
    email: str
    prefixes: frozenset[str]

    def owns_prefix(self, prefix: str) -> bool:
        return prefix.lower() in self.prefixes


class PasswordCheck:
    """Argon2id hashing with a configurable time cost, and a short memory of recent successes.

    Registrants' systems poll (``submissionDownload``, ``/v1/deposits/{id}``) with
    the same credentials many times a minute; paying a deliberately slow hash on
    every request would make each poll cost ~0.1 s of CPU and hand anyone a cheap
    way to load the server. A success is remembered for ``remember_seconds``
    under an HMAC (with a per-process random key) of the login, the password and
    the stored hash, so a changed password invalidates it and nothing reversible
    is kept. Failures are never remembered: every wrong guess pays the full cost.
    """

    def __init__(self, time_cost: int = 3, remember_seconds: float = 300.0, remember_max: int = 10_000) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost)
        self._dummy_hash = self._hasher.hash(_DUMMY_PASSWORD)
        self._key = secrets.token_bytes(32)
        self._remember_seconds = remember_seconds
        self._remember_max = remember_max
        self._recent: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        if stored_hash is None:
            self._slow_verify(self._dummy_hash, password)  # same cost as a real check
            return False
        token = hmac.new(self._key, b"\0".join((stored_hash.encode(), password.encode())), hashlib.sha256).digest()
        now = time.monotonic()
        with self._lock:
            expires = self._recent.get(token)
        if expires is not None and expires > now:
            return True
        if not self._slow_verify(stored_hash, password):
            return False
        with self._lock:
            if len(self._recent) >= self._remember_max:
                self._recent.clear()
            self._recent[token] = now + self._remember_seconds
        return True

    def _slow_verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def _registrant(account: Account) -> Registrant:
    return Registrant(
        id=account.id,
        login=account.login,
        email=account.email,
        prefixes=frozenset(p.prefix for p in account.prefixes),
    )


def create_account(
    session: Session, passwords: PasswordCheck, login: str, email: str, password: str, prefixes: list[str]
) -> Registrant:
    if not LOGIN_PATTERN.match(login):
        raise AccountError(f"login {login!r} must be 1-128 letters, digits or . _ @ -")
    if not EMAIL_PATTERN.match(email):
        raise AccountError(f"email {email!r} is not an email address")
    if len(password) < 8:
        raise AccountError("password must be at least 8 characters")
    if session.scalar(select(Account).where(Account.login == login)):
        raise AccountError(f"login {login!r} exists already")
    account = Account(login=login, email=email, password_hash=passwords.hash(password))
    session.add(account)
    session.flush()
    for prefix in prefixes:
        add_prefix(session, account, prefix)
    session.flush()
    session.refresh(account)
    return _registrant(account)


def add_prefix(session: Session, account: Account, prefix: str, handle_prefix: bool = False) -> None:
    """Give ``prefix`` to ``account``; with ``handle_prefix``, plain handle prefixes (20.500.12345) too."""
    prefix = prefix.strip().lower()
    if handle_prefix and HANDLE_PREFIX_PATTERN.match(prefix):
        pass
    elif not PREFIX_PATTERN.match(prefix):
        raise AccountError(f"prefix {prefix[:40]!r} is not a DOI prefix (10.NNNN)"
                           + (" or a handle prefix (20.500.12345)" if handle_prefix else ""))
    owner = session.get(Prefix, prefix)
    if owner is not None and owner.account_id != account.id:
        raise AccountError(f"prefix {prefix} belongs to another account")
    if owner is None:
        session.add(Prefix(prefix=prefix, account_id=account.id))


def authenticate(session: Session, passwords: PasswordCheck, login: str, password: str) -> Registrant | None:
    """The registrant for these credentials, or None; timing does not reveal which part was wrong."""
    account = session.scalar(
        select(Account).where(Account.login == login).options(selectinload(Account.prefixes))
    )
    if not passwords.verify(account.password_hash if account else None, password):
        return None
    return _registrant(account)


def registrant_by_id(session: Session, account_id: int) -> Registrant:
    account = session.scalar(
        select(Account).where(Account.id == account_id).options(selectinload(Account.prefixes))
    )
    if account is None:
        raise LookupError(f"no account {account_id}")
    return _registrant(account)
