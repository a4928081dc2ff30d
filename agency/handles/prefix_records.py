"""Prefix records (``0.NA/<prefix>``) as the DOI Handbook (9.1.1) lays them out, and the prefix administrator's key.

A prefix record holds:

* index 100, HS_ADMIN: the RA's administrator (``AGENCY_HANDLE_RA_ADMIN``), all permissions;
* index 101, HS_ADMIN: the prefix's own admin group (index 200 of the record), all permissions;
* index 200, HS_VLIST: the administrators of the prefix, the prefix administrator's key at 300;
* index 1, HS_SERV: the service handle naming this handle service (``AGENCY_HANDLE_SERVICE``);
* index 300, HS_SECKEY: the prefix administrator's secret, set by ``agency prefixes secret``, readable
  by administrators only, stored hashed: the lower-case hex SHA-1 of the secret, which is Handle.Net's
  "hashed secret key" (clients authenticate with that option: CNRI's ``--hash-secret``);
  or HS_PUBKEY: the prefix administrator's public key, set by ``agency prefixes pubkey`` from a PEM / DER
  file or Handle's own key encoding (CNRI's ``admpub.bin``), publicly readable; the administrator
  authenticates with the private key (RFC 3652 section 3.5, HS_PUBKEY challenge-response).

Every deposited DOI's HS_ADMIN names index 200 of its prefix record, so the
prefix administrator may change the prefix's DOIs and mint handles under it.
Both DOI prefixes (10.x) and plain handle prefixes (20.500.12345) are accepted.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from agency.accounts import AccountError, add_prefix
from agency.handles.editing import PREFIX_NAMESPACE, AuditHook, EditError, HandleEditor
from agency.handles.store import handle_values
from agency.handles.values import (
    ALL_ADMIN_PERMISSIONS, PUBKEY_TYPE, SECKEY_TYPE, SERV_TYPE, AdminRecord, HandleValue, Reference, encode_vlist,
)
from agency.models import Account

SERVICE_INDEX, RA_ADMIN_INDEX, PREFIX_ADMIN_INDEX, GROUP_INDEX, KEY_INDEX = 1, 100, 101, 200, 300
MIN_SECRET_CHARS = 12


class PrefixRecordError(ValueError):
    """A prefix record that cannot be made as asked (the message says why)."""


def parse_reference(raw: str) -> Reference:
    """``index:handle`` (Handle.Net's notation for a key or a group)."""
    index, _, handle = raw.partition(":")
    if not index.isdigit() or "/" not in handle:
        raise PrefixRecordError(f"{raw!r} is not index:handle (e.g. 300:0.NA/10.5555)")
    return Reference(handle, int(index))


def prefix_handle(prefix: str) -> str:
    return PREFIX_NAMESPACE + prefix


def hashed_secret(secret: str) -> bytes:
    """What HS_SECKEY stores: Handle.Net's hashed form (lower-case hex SHA-1 of the UTF-8 secret)."""
    return hashlib.sha1(secret.encode("utf-8")).hexdigest().encode("ascii")


def prefix_record_values(prefix: str, ra_admin: Reference, service_handle: str, ttl: int) -> list[HandleValue]:
    record = prefix_handle(prefix)
    return [
        HandleValue(SERVICE_INDEX, SERV_TYPE, service_handle.encode("utf-8"), ttl),
        HandleValue(RA_ADMIN_INDEX, "HS_ADMIN", AdminRecord(ra_admin.handle, ra_admin.index,
                                                            ALL_ADMIN_PERMISSIONS).encode(), ttl),
        HandleValue(PREFIX_ADMIN_INDEX, "HS_ADMIN", AdminRecord(record, GROUP_INDEX,
                                                                ALL_ADMIN_PERMISSIONS).encode(), ttl),
        HandleValue(GROUP_INDEX, "HS_VLIST", encode_vlist([Reference(record, KEY_INDEX)]), ttl),
    ]


def create_prefix_record(session: Session, prefix: str, login: str, *, ra_admin: Reference, service_handle: str,
                         ttl: int, actor: str, audit: AuditHook | None = None) -> list[HandleValue]:
    """Give ``prefix`` to account ``login`` (if nobody owns it) and write its prefix record; a secret key
    already set is kept. Returns the record's values."""
    prefix = prefix.strip().lower()
    account = session.scalar(select(Account).where(Account.login == login))
    if account is None:
        raise PrefixRecordError(f"no account {login!r}")
    try:
        add_prefix(session, account, prefix, handle_prefix=True)
    except AccountError as exc:
        raise PrefixRecordError(str(exc)) from None
    session.flush()
    record = prefix_handle(prefix)
    kept = [v for v in handle_values(session, record) if v.type in (SECKEY_TYPE, PUBKEY_TYPE)]
    values = prefix_record_values(prefix, ra_admin, service_handle, ttl) + kept
    HandleEditor(session, actor, audit).create(record, values, overwrite=True)
    return values


def set_prefix_secret(session: Session, prefix: str, secret: str, *, actor: str, audit: AuditHook | None = None,
                      index: int = KEY_INDEX) -> None:
    """Set or rotate the prefix administrator's secret key (stored hashed, not publicly readable)."""
    if len(secret) < MIN_SECRET_CHARS:
        raise PrefixRecordError(f"a secret key has at least {MIN_SECRET_CHARS} characters")
    record = prefix_handle(prefix.strip().lower())
    value = HandleValue(index, SECKEY_TYPE, hashed_secret(secret), public_read=False, public_write=False)
    _set_key_value(session, record, value, actor, audit)


def set_prefix_public_key(session: Session, prefix: str, key_file: bytes, *, actor: str,
                          audit: AuditHook | None = None, index: int = KEY_INDEX) -> bytes:
    """Set or rotate the prefix administrator's public key (an HS_PUBKEY value at ``index``, replacing a secret
    key there) from the bytes of a public key file. Returns the HS_PUBKEY encoding stored."""
    from agency.handles.public_keys import KeyFormatError, load_public_key_file

    try:
        encoded = load_public_key_file(key_file)
    except KeyFormatError as exc:
        raise PrefixRecordError(str(exc)) from None
    value = HandleValue(index, PUBKEY_TYPE, encoded, public_read=True, public_write=False)
    _set_key_value(session, prefix_handle(prefix.strip().lower()), value, actor, audit)
    return encoded


def _set_key_value(session: Session, record: str, value: HandleValue, actor: str, audit: AuditHook | None) -> None:
    current = handle_values(session, record)
    if not any(v.type == "HS_VLIST" for v in current):
        raise PrefixRecordError(f"{record} has no prefix record yet: run `agency prefixes create` first")
    index = value.index
    editor = HandleEditor(session, actor, audit)
    try:
        if any(v.index == index for v in current):
            editor.modify(record, [value])
        else:
            editor.add(record, [value])
    except EditError as exc:
        raise PrefixRecordError(exc.message) from None
