"""Who may change a handle: HS_ADMIN values and the admin groups (HS_VLIST) they name, as RFC 3651 defines them.

An administrator is identified by a key: a handle and the index of its
HS_SECKEY or HS_PUBKEY value. An HS_ADMIN value grants its permission bits to
the value it references; when that value is an HS_VLIST, to every member of
the list, recursively (bounded depth, cycles ignored). Index 0 in a reference
means any index of that handle.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

from agency.handles.doi_syntax import doi_key

from agency.handles.values import (
    ADD_ADMIN, ADD_VALUE, ADMIN_TYPE, MODIFY_ADMIN, MODIFY_VALUE, REMOVE_ADMIN, REMOVE_VALUE, VLIST_TYPE,
    AdminRecord, HandleValue, Reference, ValueFormatError, decode_vlist,
)

MAX_GROUP_DEPTH = 8
ValuesOf = Callable[[str], Sequence[HandleValue]]


def same_handle(a: str, b: str) -> bool:
    """Handles compare ASCII case-insensitively, as Handle.Net servers do by default."""
    return doi_key(a) == doi_key(b)


def _names(identity: Reference, ref: Reference, values_of: ValuesOf, depth: int, seen: set) -> bool:
    if same_handle(identity.handle, ref.handle) and ref.index in (0, identity.index):
        return True
    key = (doi_key(ref.handle), ref.index)
    if depth >= MAX_GROUP_DEPTH or key in seen:
        return False
    seen.add(key)
    for value in values_of(ref.handle):
        if value.type != VLIST_TYPE or ref.index not in (0, value.index):
            continue
        try:
            members = decode_vlist(value.data)
        except ValueFormatError:
            continue
        if any(_names(identity, member, values_of, depth + 1, seen) for member in members):
            return True
    return False


def admin_records(values: Iterable[HandleValue]) -> list[AdminRecord]:
    out = []
    for value in values:
        if value.type == ADMIN_TYPE:
            try:
                out.append(AdminRecord.decode(value.data))
            except ValueFormatError:
                continue
    return out


def permitted(identity: Reference, admin_values: Iterable[HandleValue], needed: int, values_of: ValuesOf) -> bool:
    """Whether the key ``identity`` holds ``needed`` through any HS_ADMIN among ``admin_values``."""
    return any(record.allows(needed) and _names(identity, Reference(record.handle, record.index), values_of, 0, set())
               for record in admin_records(admin_values))


def permission_for_value(action: str, value_type: str) -> int:
    """The permission bit an add / modify / remove of a value of ``value_type`` needs."""
    admin = value_type == ADMIN_TYPE
    return {"add": ADD_ADMIN if admin else ADD_VALUE,
            "modify": MODIFY_ADMIN if admin else MODIFY_VALUE,
            "remove": REMOVE_ADMIN if admin else REMOVE_VALUE}[action]
