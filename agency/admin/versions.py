"""Version resets (Crossref support does them by ticket): lowering stored versions so updates pass again.

A registrant whose timestamp convention changed (Unix seconds after
YYYYMMDDhhmmss) sees every update refused as "less or equal to previously
submitted version". The operator lowers the stored version of chosen DOIs (by
name, by prefix, or those a submission last changed) to N; only versions above
N change. Each DOI's reset is kept (``version_resets``) so the next deposit's
log line says the stored version was reset; one audit event records the
command, its selection, its reason and how many DOIs it changed, in the same
transaction. Done in SQL, so a prefix of a million DOIs is two statements.
"""

from __future__ import annotations

from sqlalchemy import func, insert, literal, select, update
from sqlalchemy.orm import Session

from agency.admin.audit import MAX_REASON_CHARS, Actor, record_event
from agency.handles.doi_syntax import doi_key
from agency.handles.store import timestamp_problem, version_of
from agency.models import Handle, VersionReset


class ResetError(Exception):
    """A reset that cannot be done; the message says why."""


def reset_versions(session: Session, actor: Actor, to: str, reason: str | None, *, dois: list[str] | None = None,
                   prefix: str | None = None, submission_id: int | None = None) -> int:
    """Lower the stored version of the selected DOIs to ``to``; returns how many changed."""
    reason = (reason or "").strip()
    if not reason:
        raise ResetError("A reason is required (--reason): it is kept in the audit trail.")
    if len(reason) > MAX_REASON_CHARS:
        raise ResetError(f"A reason is at most {MAX_REASON_CHARS} characters.")
    problem = timestamp_problem(to)
    if problem:
        raise ResetError(f"--to: {problem}")
    chosen = [bool(dois), prefix is not None, submission_id is not None]
    if sum(chosen) != 1:
        raise ResetError("Choose the DOIs one way: DOI names, --prefix, or --submission.")
    if dois:
        where, subject = Handle.key.in_([doi_key(d) for d in dois]), f"doi:{dois[0]}" if len(dois) == 1 \
            else f"dois:{len(dois)}"
        missing = set(doi_key(d) for d in dois) - set(session.scalars(select(Handle.key).where(where)))
        if missing:
            raise ResetError("Not registered here: " + ", ".join(sorted(missing)[:10]))
    elif prefix is not None:
        where, subject = Handle.prefix == prefix, f"prefix:{prefix}"
    else:
        where, subject = Handle.submission_id == submission_id, f"submission:{submission_id}"
    target = version_of(to)
    selected = _lowering(where, target)
    session.execute(insert(VersionReset).from_select(
        ["handle_key", "from_version", "to_version", "reason", "reset_at"],
        select(Handle.key, Handle.version, literal(target), literal(reason), func.current_timestamp())
        .where(selected)))
    changed = session.execute(update(Handle).where(selected).values(version=target)
                              .execution_options(synchronize_session=False)).rowcount
    record_event(session, actor, "doi.reset_version", subject, reason=reason,
                 after={"version": to, "changed": changed})
    return changed


def _lowering(where, target: str):
    """The selection, narrowed to versions above the target (a reset only ever lowers)."""
    return where & (Handle.version > target)
