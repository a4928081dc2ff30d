"""RA staff accounts (operators): created from the command line, signed in at the staff console.

Separate from registrant accounts on purpose: an operator can never deposit, and a
registrant's credentials never open the staff console.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from agency.accounts import LOGIN_PATTERN, AccountError, PasswordCheck
from agency.admin.audit import Actor, record_event
from agency.models import Operator

MIN_PASSWORD_CHARS = 8


@dataclass(frozen=True)
class StaffMember:
    """What the staff console needs to know about a signed-in operator."""

    id: int
    name: str
    password_hash: str


def create_operator(session: Session, passwords: PasswordCheck, name: str, password: str,
                    actor: Actor | None = None) -> StaffMember:
    """Add an operator account and its audit event in the caller's transaction."""
    if not LOGIN_PATTERN.match(name):
        raise AccountError(f"operator name {name!r} must be 1-128 letters, digits or . _ @ -")
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"password must be at least {MIN_PASSWORD_CHARS} characters")
    if session.scalar(select(Operator).where(Operator.name == name)):
        raise AccountError(f"operator {name!r} exists already")
    operator = Operator(name=name, password_hash=passwords.hash(password))
    session.add(operator)
    session.flush()
    record_event(session, actor or Actor.operator(), "operator.create", f"operator:{name}",
                 after={"name": name})
    return StaffMember(operator.id, operator.name, operator.password_hash)


def authenticate_operator(session: Session, passwords: PasswordCheck, name: str, password: str) -> StaffMember | None:
    """The operator for these credentials, or None (same cost whether the name or the password is wrong)."""
    operator = session.scalar(select(Operator).where(Operator.name == name))
    if not passwords.verify(operator.password_hash if operator else None, password):
        return None
    if operator.disabled_at is not None:
        return None
    return StaffMember(operator.id, operator.name, operator.password_hash)


def operator_by_id(session: Session, operator_id: int) -> StaffMember | None:
    operator = session.get(Operator, operator_id)
    if operator is None or operator.disabled_at is not None:
        return None
    return StaffMember(operator.id, operator.name, operator.password_hash)
