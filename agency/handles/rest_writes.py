"""Handle.Net REST writes, framework-free: who is asking (a handle key and its secret), what the JSON values
mean, and the create / replace / delete / list operations with Handle.Net's response codes.

Authentication is Handle.Net's: HTTP Basic with the user ``index:handle``
(percent-encoded, e.g. ``300%3A0.NA%2F10.5555``) and the secret key of that
HS_SECKEY value as the password (stored as given or in Handle.Net's hashed
form). Permissions are the protocol's: the same HS_ADMIN and HS_VLIST rules
(``agency.handles.admins``), the same writer (``agency.handles.editing``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import unquote

from sqlalchemy import select
from sqlalchemy.orm import Session

from agency.handles.admins import permission_for_value, permitted
from agency.handles.counts import prefix_count
from agency.handles.doi_syntax import doi_key
from agency.handles.editing import PREFIX_NAMESPACE, EditError, HandleEditor, handle_prefix, handle_problem
from agency.handles.protocol.directory import record_values
from agency.handles.resolver import HandleAnswer, answer
from agency.handles.store import handle_values
from agency.handles.values import (
    ADD_HANDLE, DELETE_HANDLE, LIST_HANDLES, MAX_DATA_BYTES, SECKEY_TYPE, AdminRecord, HandleValue, Reference,
    ValueFormatError, encode_vlist,
)
from agency.models import Handle, Prefix

SUCCESS, ERROR, HANDLE_NOT_FOUND, HANDLE_EXISTS, INVALID_HANDLE = 1, 2, 100, 101, 102
VALUES_NOT_FOUND, VALUE_EXISTS, INVALID_VALUE, NOT_RESPONSIBLE = 200, 201, 202, 301
NOT_AUTHORIZED, AUTHENTICATION_NEEDED, AUTHENTICATION_FAILED = 400, 402, 403
# Handle.Net's pairing of response codes with HTTP statuses (writes: values not found is a 400).
WRITE_HTTP_STATUS = {SUCCESS: 200, ERROR: 500, HANDLE_NOT_FOUND: 404, HANDLE_EXISTS: 409, INVALID_HANDLE: 400,
                     VALUES_NOT_FOUND: 400, VALUE_EXISTS: 409, INVALID_VALUE: 400, NOT_RESPONSIBLE: 400,
                     NOT_AUTHORIZED: 403, AUTHENTICATION_NEEDED: 401, AUTHENTICATION_FAILED: 403}
MAX_PAGE_SIZE = 10_000
MAX_VALUES = 1024


def write_answer(code: int, handle: str | None = None, message: str | None = None, created: bool = False,
                 **extra) -> HandleAnswer:
    result = answer(code, handle, message, http_status=201 if created else WRITE_HTTP_STATUS.get(code, 500))
    result.body.update(extra)
    return result


class RequestRefused(Exception):
    def __init__(self, result: HandleAnswer) -> None:
        super().__init__(result.body.get("message", ""))
        self.result = result


@dataclass(frozen=True)
class Credentials:
    key: Reference
    secret: str


def parse_basic_user(username: str, password: str) -> Credentials:
    """``300%3A0.NA%2F10.5555`` and a secret -> the key 300:0.NA/10.5555."""
    user = unquote(username)
    index, _, handle = user.partition(":")
    if not index.isdigit() or "/" not in handle:
        raise RequestRefused(write_answer(AUTHENTICATION_FAILED, message=(
            "The user is index:handle of your secret key, percent-encoded, e.g. 300%3A0.NA%2F10.5555.")))
    return Credentials(Reference(handle, int(index)), password)


def secret_matches(stored: bytes, secret: str) -> bool:
    """A secret as typed, against HS_SECKEY data stored as given or in Handle.Net's hashed form."""
    given = secret.encode("utf-8")
    hashed = hashlib.sha1(given).hexdigest().encode("ascii")
    return hmac.compare_digest(stored, given) | hmac.compare_digest(stored.lower(), hashed)


def authenticate_key(session: Session, credentials: Credentials) -> bool:
    for value in handle_values(session, credentials.key.handle):
        if value.index == credentials.key.index and value.type == SECKEY_TYPE:
            return secret_matches(value.data, credentials.secret)
    return False


# ---------------------------------------------------------------------------
# JSON values (Handle.Net REST form)

def _whole_number(raw: object) -> int | None:
    """An integer, or digits in a string (clients such as pyhandle send "200")."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 10:
        return int(raw)
    return None


def value_from_json(entry: object) -> HandleValue:
    if not isinstance(entry, dict):
        raise ValueFormatError("each value is a JSON object with index, type and data")
    index, value_type = _whole_number(entry.get("index")), entry.get("type")
    if index is None or not 0 < index < 2 ** 31:
        raise ValueFormatError(f"index {str(entry.get('index'))[:20]!r} is not a positive integer")
    if not isinstance(value_type, str) or not value_type or len(value_type.encode()) > 255:
        raise ValueFormatError(f"value {index}: type must be a non-empty string of at most 255 octets")
    ttl = entry.get("ttl", 86400)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 <= ttl <= 2 ** 31 - 1:
        raise ValueFormatError(f"value {index}: ttl must be a whole number of seconds")
    data = _data_from_json(value_type, entry.get("data"), index)
    if len(data) > MAX_DATA_BYTES:
        raise ValueFormatError(f"value {index}: data is over {MAX_DATA_BYTES} octets")
    secret = value_type == SECKEY_TYPE
    return HandleValue(index, value_type, data, ttl, public_read=not secret and entry.get("publicRead", True) is not False,
                       public_write=False)


def _data_from_json(value_type: str, data: object, index: int) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if not isinstance(data, dict) or "value" not in data:
        raise ValueFormatError(f"value {index}: data is a string or {{\"format\": ..., \"value\": ...}}")
    shape, value = data.get("format", "string"), data["value"]
    if shape == "string" and isinstance(value, str):
        return value.encode("utf-8")
    if shape == "base64" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise ValueFormatError(f"value {index}: not base64") from None
    if shape == "hex" and isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise ValueFormatError(f"value {index}: not hex") from None
    if shape == "admin" and isinstance(value, dict):
        handle, ref_index = value.get("handle"), _whole_number(value.get("index"))
        if not isinstance(handle, str) or ref_index is None:
            raise ValueFormatError(f"value {index}: admin value needs handle and index")
        perms = AdminRecord.parse_permission_string(str(value.get("permissions", "011111110011")))
        return AdminRecord(handle, ref_index, perms).encode()
    if shape == "vlist" and isinstance(value, list):
        refs = []
        for item in value:
            if not isinstance(item, dict) or not isinstance(item.get("handle"), str) \
                    or _whole_number(item.get("index")) is None:
                raise ValueFormatError(f"value {index}: vlist items are {{handle, index}}")
            refs.append(Reference(item["handle"], _whole_number(item["index"])))
        return encode_vlist(refs)
    raise ValueFormatError(f"value {index}: format {str(shape)[:20]!r} with this value is not supported")


def values_from_body(body: object) -> list[HandleValue]:
    entries = body.get("values") if isinstance(body, dict) else body
    if not isinstance(entries, list):
        raise ValueFormatError('the body is {"values": [...]} (or the list of values)')
    if len(entries) > MAX_VALUES:
        raise ValueFormatError(f"at most {MAX_VALUES} values")
    return [value_from_json(e) for e in entries]


# ---------------------------------------------------------------------------
# Operations

@dataclass
class RestWriter:
    session: Session
    key: Reference
    audit: object = None

    @property
    def actor(self) -> str:
        return f"handle-admin:{self.key.index}:{self.key.handle}"

    def _values_of(self, handle: str):
        return record_values(self.session, handle, 86400) or []

    def _check_served(self, handle: str) -> None:
        problem = handle_problem(handle)
        if problem:
            raise RequestRefused(write_answer(INVALID_HANDLE, handle, problem))
        if self.session.get(Prefix, handle_prefix(handle)) is None:
            raise RequestRefused(write_answer(NOT_RESPONSIBLE, handle, "That prefix doesn't live here."))

    def _require(self, handle: str, admin_values, permission: int, what: str) -> None:
        if not permitted(self.key, admin_values, permission, self._values_of):
            raise RequestRefused(write_answer(NOT_AUTHORIZED, handle, f"This key may not {what}."))

    def put(self, handle: str, values: Sequence[HandleValue], *, indexes: Sequence[int], overwrite: bool,
            mint: bool) -> HandleAnswer:
        if mint:
            handle = f"{handle.rstrip('/')}/{uuid.uuid4()}" if handle.endswith("/") or "/" not in handle \
                else f"{handle}{uuid.uuid4()}"
        self._check_served(handle)
        if handle.upper().startswith(PREFIX_NAMESPACE):
            raise RequestRefused(write_answer(NOT_AUTHORIZED, handle, "Prefix records are changed by the RA."))
        existing = self.session.get(Handle, doi_key(handle)) is not None
        editor = HandleEditor(self.session, self.actor, self.audit)
        if indexes:
            if not existing:
                return write_answer(HANDLE_NOT_FOUND, handle)
            chosen = [v for v in values if v.index in set(indexes)]
            current = {v.index: v for v in handle_values(self.session, handle)}
            for value in chosen:
                action = "modify" if value.index in current else "add"
                self._require(handle, current.values(), permission_for_value(action, value.type),
                              f"{action} the value at index {value.index}")
            fresh = [v for v in chosen if v.index not in current]
            known = [v for v in chosen if v.index in current]
            if known and not overwrite:
                return write_answer(VALUE_EXISTS, handle, f"index {known[0].index} is taken (overwrite=false)")
            if known:
                editor.modify(handle, known)
            if fresh:
                editor.add(handle, fresh)
            return write_answer(SUCCESS, handle, created=bool(fresh) and not known)
        if existing and not overwrite:
            return write_answer(HANDLE_EXISTS, handle, "The handle exists (overwrite=false).")
        prefix_record = self._values_of(PREFIX_NAMESPACE + handle_prefix(handle))
        self._require(handle, prefix_record, ADD_HANDLE, "create handles under this prefix")
        if existing:
            self._require(handle, handle_values(self.session, handle), DELETE_HANDLE, "replace this handle")
        editor.create(handle, values, overwrite=overwrite)
        return write_answer(SUCCESS, handle, created=not existing)

    def delete(self, handle: str, indexes: Sequence[int]) -> HandleAnswer:
        self._check_served(handle)
        current = handle_values(self.session, handle)
        if not current:
            return write_answer(HANDLE_NOT_FOUND, handle)
        editor = HandleEditor(self.session, self.actor, self.audit)
        if indexes:
            by_index = {v.index: v for v in current}
            for index in indexes:
                if index in by_index:
                    self._require(handle, current, permission_for_value("remove", by_index[index].type),
                                  f"remove the value at index {index}")
            editor.remove(handle, indexes)
            return write_answer(SUCCESS, handle)
        self._require(handle, current, DELETE_HANDLE, "delete this handle")
        editor.delete(handle)
        return write_answer(SUCCESS, handle)

    def list_handles(self, prefix: str, page: int | None, page_size: int | None) -> HandleAnswer:
        prefix = prefix.removeprefix(PREFIX_NAMESPACE).lower()
        if self.session.get(Prefix, prefix) is None:
            return write_answer(NOT_RESPONSIBLE, message="That prefix doesn't live here.")
        record = self._values_of(PREFIX_NAMESPACE + prefix)
        self._require(PREFIX_NAMESPACE + prefix, record, LIST_HANDLES, "list the handles of this prefix")
        total = prefix_count(self.session, prefix)
        size = min(page_size or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
        query = page_of_prefix(prefix, (page or 0) * size, size)
        extra = {"prefix": prefix, "totalCount": str(total)}
        if page is not None:
            extra.update(page=page, pageSize=size)
        return write_answer(SUCCESS, handles=list(self.session.scalars(query)), **extra)


def page_of_prefix(prefix: str, skip: int, size: int):
    """The names of a page of ``prefix``'s handles in key order. The page's keys are chosen from the
    (prefix, key) index alone (an index-only scan on PostgreSQL), so the entries skipped cost an index step
    each, never a row read; only the page's own rows are read for their names."""
    page = (select(Handle.key).where(Handle.prefix == prefix).order_by(Handle.key).limit(size).offset(skip)
            .subquery())
    return select(Handle.name).join(page, page.c.key == Handle.key).order_by(Handle.key)


def served_prefixes(session: Session) -> list[str]:
    return list(session.scalars(select(Prefix.prefix).order_by(Prefix.prefix)))


def edit_error_answer(handle: str, exc: EditError) -> HandleAnswer:
    return write_answer(exc.code, handle, exc.message)
