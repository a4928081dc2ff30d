"""The audit trail: who changed what, when and why, written with the change itself.

``record_event`` adds its row to the caller's session, so the event commits or
rolls back together with the change it describes: no change without its event,
no event for a change that did not happen. Rows are never updated or deleted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from agency.models import AuditEvent

MAX_REASON_CHARS = 2000


@dataclass(frozen=True)
class Actor:
    """Who makes a change: an operator (RA staff), an account (a registrant) or the system itself."""

    kind: str  # "operator", "account" or "system"
    name: str

    def __str__(self) -> str:
        return self.kind if self.kind == "system" else f"{self.kind}:{self.name}"

    @classmethod
    def operator(cls, name: str | None = None) -> "Actor":
        """The operator named by ``name``, else ``AGENCY_OPERATOR``, else the login running the command."""
        chosen = name or os.environ.get("AGENCY_OPERATOR") or os.environ.get("USER") or "operator"
        return cls("operator", chosen)

    @classmethod
    def account(cls, login: str) -> "Actor":
        return cls("account", login)


SYSTEM = Actor("system", "system")


def record_event(session: Session, actor: Actor, action: str, subject: str, *,
                 account_id: int | None = None, before: dict[str, Any] | None = None,
                 after: dict[str, Any] | None = None, reason: str | None = None) -> AuditEvent:
    """Append one event to the trail in the caller's transaction."""
    if reason is not None and len(reason) > MAX_REASON_CHARS:
        raise ValueError(f"a reason is at most {MAX_REASON_CHARS} characters")
    event = AuditEvent(actor=str(actor), action=action, subject=subject, account_id=account_id,
                       before=before, after=after, reason=reason)
    session.add(event)
    return event


def events(session: Session, *, subject: str | None = None, account_id: int | None = None,
           since: datetime | None = None, limit: int = 1000) -> Iterator[AuditEvent]:
    """Events oldest first, filtered by subject (exact, or a prefix ending in ':'), account and time."""
    query = select(AuditEvent).order_by(AuditEvent.at, AuditEvent.id).limit(limit)
    if subject:
        query = query.where(AuditEvent.subject.startswith(subject) if subject.endswith(":")
                            else AuditEvent.subject == subject)
    if account_id is not None:
        query = query.where(AuditEvent.account_id == account_id)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    yield from session.scalars(query)
