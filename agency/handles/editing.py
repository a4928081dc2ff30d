"""Writing handle records value by value: create, delete, add, modify, remove (the Handle protocol's and the
REST API's administration, Handle.Net semantics).

Each function works in the caller's transaction and returns nothing until the
record is consistent; refusals are ``EditError`` with the protocol response
code that says why (the REST API maps the same codes to HTTP statuses). A
record's whole value set is rewritten on every change (records are small):
the HS_ADMIN a deposited DOI derives from its prefix is stored from then on,
so it can itself be modified or removed.

Who made a change is written to the audit trail through ``audit``, a callable
the composition root supplies (``handles`` does not import ``admin``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable, Sequence

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from agency.handles.doi_syntax import doi_key
from agency.handles.store import format_refs, handle_values, version_of
from agency.handles.values import HandleValue, MAX_HANDLE_BYTES
from agency.models import Handle, HandleValue as ValueRow, Prefix

PREFIX_NAMESPACE = "0.NA/"
MAX_VALUES_PER_HANDLE = 1024

# Response codes shared with the protocol (RFC 3652) and mapped by the REST API.
HANDLE_NOT_FOUND, HANDLE_ALREADY_EXISTS, INVALID_HANDLE = 100, 101, 102
VALUES_NOT_FOUND, VALUE_ALREADY_EXISTS, INVALID_VALUE = 200, 201, 202
SERVER_NOT_RESPONSIBLE = 301

AuditHook = Callable[..., None]  # (session, actor, action, subject, *, account_id, before, after)


class EditError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def handle_prefix(handle: str) -> str:
    """The prefix a handle lives under ("10.5555" for 10.5555/x and for the prefix record 0.NA/10.5555)."""
    if handle.upper().startswith(PREFIX_NAMESPACE):
        return handle[len(PREFIX_NAMESPACE):].lower()
    return handle.split("/", 1)[0].lower()


def owning_account(session: Session, handle: str) -> int | None:
    return session.scalar(select(Prefix.account_id).where(Prefix.prefix == handle_prefix(handle)))


def handle_problem(handle: str) -> str | None:
    if "/" not in handle or handle.startswith("/") or handle.endswith("/"):
        return "a handle has the form prefix/suffix"
    if len(handle.encode("utf-8")) > MAX_HANDLE_BYTES:
        return f"a handle is at most {MAX_HANDLE_BYTES} octets"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in handle):
        return "a handle contains no control characters"
    return None


@dataclass
class HandleEditor:
    """Changes handle records on behalf of ``actor`` (e.g. ``handle-admin:300:0.NA/10.5555``)."""

    session: Session
    actor: str
    audit: AuditHook | None = None

    def create(self, handle: str, values: Sequence[HandleValue], *, overwrite: bool = False) -> None:
        problem = handle_problem(handle)
        if problem:
            raise EditError(INVALID_HANDLE, problem)
        account_id = owning_account(self.session, handle)
        if account_id is None:
            raise EditError(SERVER_NOT_RESPONSIBLE, f"prefix {handle_prefix(handle)} is not served here")
        _check_values(values)
        existing = self.session.get(Handle, doi_key(handle))
        before = None
        if existing is not None:
            if not overwrite:
                raise EditError(HANDLE_ALREADY_EXISTS, f"handle {handle} exists already")
            before = _snapshot(handle_values(self.session, handle))
            self.session.execute(delete(ValueRow).where(ValueRow.handle_key == existing.key))
            existing.revision += 1
            existing.account_id = account_id
        else:
            self.session.execute(insert(Handle).values(
                key=doi_key(handle), name=handle, prefix=handle.split("/", 1)[0].lower(),
                version=version_of("0"), revision=1, account_id=account_id, submission_id=0,
                created_at=func.current_timestamp(), updated_at=func.current_timestamp()))
        self._write(doi_key(handle), values)
        self._audit("handle.create", handle, account_id, before, _snapshot(values))

    def delete(self, handle: str) -> None:
        row = self._existing(handle)
        before = _snapshot(handle_values(self.session, handle))
        self.session.delete(row)
        self.session.flush()
        self._audit("handle.delete", handle, row.account_id, before, None)

    def add(self, handle: str, values: Sequence[HandleValue], *, overwrite: bool = False) -> None:
        row = self._existing(handle)
        _check_values(values)
        current = {v.index: v for v in handle_values(self.session, handle)}
        clashes = [v.index for v in values if v.index in current]
        if clashes and not overwrite:
            raise EditError(VALUE_ALREADY_EXISTS, f"index {clashes[0]} is taken")
        self._replace(row, current, {**current, **{v.index: v for v in values}})

    def modify(self, handle: str, values: Sequence[HandleValue]) -> None:
        row = self._existing(handle)
        _check_values(values)
        current = {v.index: v for v in handle_values(self.session, handle)}
        missing = [v.index for v in values if v.index not in current]
        if missing:
            raise EditError(VALUES_NOT_FOUND, f"no value at index {missing[0]}")
        self._replace(row, current, {**current, **{v.index: v for v in values}})

    def remove(self, handle: str, indexes: Iterable[int]) -> None:
        row = self._existing(handle)
        current = {v.index: v for v in handle_values(self.session, handle)}
        wanted = set(indexes)
        if not wanted & set(current):
            raise EditError(VALUES_NOT_FOUND, "none of those indexes has a value")
        self._replace(row, current, {i: v for i, v in current.items() if i not in wanted})

    # -- internals

    def _existing(self, handle: str) -> Handle:
        row = self.session.get(Handle, doi_key(handle))
        if row is None:
            raise EditError(HANDLE_NOT_FOUND, f"handle {handle} does not exist")
        return row

    def _replace(self, row: Handle, before: dict[int, HandleValue], after: dict[int, HandleValue]) -> None:
        changed = [v for i, v in after.items() if before.get(i) != v]
        self.session.execute(delete(ValueRow).where(ValueRow.handle_key == row.key))
        kept = [v for i, v in sorted(after.items()) if v not in changed]
        self._write(row.key, kept, keep_timestamps=True)
        self._write(row.key, changed)
        row.revision += 1
        row.updated_at = datetime.now(timezone.utc)
        self._audit("handle.update", row.name, row.account_id, _snapshot(before.values()), _snapshot(after.values()))

    def _write(self, key: str, values: Iterable[HandleValue], keep_timestamps: bool = False) -> None:
        now = datetime.now(timezone.utc)
        rows = [{"handle_key": key, "idx": v.index, "type": v.type, "data": v.data, "ttl_type": v.ttl_type,
                 "ttl": v.ttl, "timestamp": datetime.fromtimestamp(v.timestamp, timezone.utc)
                 if keep_timestamps and v.timestamp else now,
                 "refs": format_refs(v.references), "admin_read": v.admin_read, "admin_write": v.admin_write,
                 "pub_read": v.public_read, "pub_write": v.public_write} for v in values]
        if rows:
            self.session.execute(insert(ValueRow), rows)

    def _audit(self, action: str, handle: str, account_id: int | None, before, after) -> None:
        if self.audit is not None:
            self.audit(self.session, self.actor, action, f"handle:{handle}", account_id=account_id,
                       before=before, after=after)


def _check_values(values: Sequence[HandleValue]) -> None:
    indexes = [v.index for v in values]
    if len(set(indexes)) != len(indexes):
        raise EditError(INVALID_VALUE, "two values have the same index")
    if any(i <= 0 for i in indexes):
        raise EditError(INVALID_VALUE, "value indexes are positive")
    if len(values) > MAX_VALUES_PER_HANDLE:
        raise EditError(INVALID_VALUE, f"a handle has at most {MAX_VALUES_PER_HANDLE} values")


def _snapshot(values: Iterable[HandleValue]) -> dict:
    """A JSON-able summary of a value set for the audit trail (data shown as text or hex, bounded)."""
    out = {}
    for v in values:
        try:
            shown = v.data.decode("utf-8")
        except UnicodeDecodeError:
            shown = "hex:" + v.data.hex()
        if v.type == "HS_SECKEY":
            shown = "(secret)"
        out[str(v.index)] = {"type": v.type, "data": shown[:500]}
    return out
