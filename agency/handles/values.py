"""Handle values as RFC 3651 defines them, and their RFC 3652 wire encoding: one codec for every face.

The protocol server, the REST API and the SQL storage views all read and
write values through this module, so a value looks the same wherever it is
seen. Structured data types (HS_ADMIN, HS_VLIST, HS_SITE, HS_PUBKEY) are
encoded and decoded here too; HS_SECKEY data is the secret's bytes.

Every read is bounded: lengths and counts are checked against the bytes that
remain before anything is allocated, so a hostile length or count is a
``ValueFormatError``, never a large allocation.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import Sequence

# Value permissions (RFC 3651 section 3.1, the low four bits of the permission octet).
PUBLIC_WRITE, PUBLIC_READ, ADMIN_WRITE, ADMIN_READ = 0x01, 0x02, 0x04, 0x08
# TTL types (RFC 3651 section 3.1).
TTL_RELATIVE, TTL_ABSOLUTE = 0, 1
# Administrator permissions of an HS_ADMIN value (RFC 3651 section 3.2.1), bit by bit.
ADD_HANDLE, DELETE_HANDLE, ADD_NA, DELETE_NA = 0x0001, 0x0002, 0x0004, 0x0008
MODIFY_VALUE, REMOVE_VALUE, ADD_VALUE, READ_VALUE = 0x0010, 0x0020, 0x0040, 0x0080
MODIFY_ADMIN, REMOVE_ADMIN, ADD_ADMIN, LIST_HANDLES = 0x0100, 0x0200, 0x0400, 0x0800
ALL_ADMIN_PERMISSIONS = 0x0FFF
# What a handle's own administrator may do (Handle.Net's default for new handles: no NA rights).
HANDLE_ADMIN_PERMISSIONS = ALL_ADMIN_PERMISSIONS & ~(ADD_NA | DELETE_NA | LIST_HANDLES)

MAX_HANDLE_BYTES = 2048
MAX_TYPE_BYTES = 255
MAX_DATA_BYTES = 256 * 1024
MAX_REFERENCES = 256
DEFAULT_TTL = 86400
ADMIN_TYPE, VLIST_TYPE, SITE_TYPE = "HS_ADMIN", "HS_VLIST", "HS_SITE"
SECKEY_TYPE, PUBKEY_TYPE, SERV_TYPE, URL_TYPE = "HS_SECKEY", "HS_PUBKEY", "HS_SERV", "URL"


class ValueFormatError(ValueError):
    """Bytes that do not decode as the structure they claim to be."""


class Reader:
    """A cursor over received bytes; every read is checked against what remains."""

    __slots__ = ("data", "offset", "end")

    def __init__(self, data: bytes, offset: int = 0, end: int | None = None) -> None:
        self.data = data
        self.offset = offset
        self.end = len(data) if end is None else end

    @property
    def remaining(self) -> int:
        return self.end - self.offset

    def take(self, n: int, what: str = "field") -> bytes:
        if n < 0 or n > self.remaining:
            raise ValueFormatError(f"{what}: {n} bytes wanted, {self.remaining} left")
        start = self.offset
        self.offset += n
        return self.data[start:self.offset]

    def u8(self) -> int:
        return self.take(1, "octet")[0]

    def u16(self) -> int:
        return struct.unpack(">H", self.take(2, "2-octet integer"))[0]

    def u32(self) -> int:
        return struct.unpack(">I", self.take(4, "4-octet integer"))[0]

    def i32(self) -> int:
        return struct.unpack(">i", self.take(4, "4-octet integer"))[0]

    def blob(self, limit: int, what: str = "byte string") -> bytes:
        """A 4-octet length, then that many bytes (at most ``limit``)."""
        n = self.i32()
        if n < 0 or n > limit:
            raise ValueFormatError(f"{what}: length {n} is outside 0..{limit}")
        return self.take(n, what)

    def text(self, limit: int, what: str = "string") -> str:
        raw = self.blob(limit, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueFormatError(f"{what} is not valid UTF-8") from None

    def count(self, smallest_item: int, limit: int, what: str = "list") -> int:
        """A 4-octet item count, refused when negative, over ``limit`` or more than the bytes left could hold."""
        n = self.i32()
        if n < 0 or n > limit or n * smallest_item > self.remaining:
            raise ValueFormatError(f"{what}: count {n} is impossible here")
        return n

    def finish(self, what: str) -> None:
        if self.remaining:
            raise ValueFormatError(f"{what}: {self.remaining} unexpected bytes at the end")


_U32 = struct.Struct(">I").pack
_VALUE_HEAD = struct.Struct(">iIBiB").pack


def u32(n: int) -> bytes:
    return _U32(n & 0xFFFFFFFF)


def blob(raw: bytes) -> bytes:
    return _U32(len(raw)) + raw


def text(value: str) -> bytes:
    raw = value.encode("utf-8")
    return _U32(len(raw)) + raw


@dataclass(frozen=True)
class Reference:
    """A pointer to one value of a handle (``index:handle``)."""

    handle: str
    index: int

    def encode(self) -> bytes:
        return text(self.handle) + u32(self.index)

    @classmethod
    def read(cls, reader: Reader) -> "Reference":
        handle = reader.text(MAX_HANDLE_BYTES, "reference handle")
        return cls(handle, reader.i32())

    def __str__(self) -> str:
        return f"{self.index}:{self.handle}"


@dataclass(frozen=True)
class HandleValue:
    """One value of a handle record, as RFC 3651 defines it and the protocol carries it.

    ``timestamp`` is seconds since 1970 (UTC), the protocol's unit.
    """

    index: int
    type: str
    data: bytes
    ttl: int = DEFAULT_TTL
    ttl_type: int = TTL_RELATIVE
    timestamp: int = 0
    references: tuple[Reference, ...] = ()
    admin_read: bool = True
    admin_write: bool = True
    public_read: bool = True
    public_write: bool = False

    @property
    def permissions(self) -> int:
        return ((ADMIN_READ if self.admin_read else 0) | (ADMIN_WRITE if self.admin_write else 0)
                | (PUBLIC_READ if self.public_read else 0) | (PUBLIC_WRITE if self.public_write else 0))

    def encode(self) -> bytes:
        """The RFC 3652 section 2.2.3 encoding of this value."""
        return encode_value(self.index, self.type, self.data, self.ttl_type, self.ttl, self.timestamp,
                            self.references, self.permissions)

    @classmethod
    def read(cls, reader: Reader) -> "HandleValue":
        index, timestamp, ttl_type, ttl, perms = struct.unpack(">iIBiB", reader.take(14, "handle value"))
        if ttl_type not in (TTL_RELATIVE, TTL_ABSOLUTE):
            raise ValueFormatError(f"handle value {index}: TTL type {ttl_type} is neither 0 nor 1")
        value_type = reader.text(MAX_TYPE_BYTES, "value type")
        data = reader.blob(MAX_DATA_BYTES, "value data")
        n = reader.count(8, MAX_REFERENCES, "value references")
        refs = tuple(Reference.read(reader) for _ in range(n))
        return cls(index, value_type, data, ttl, ttl_type, timestamp, refs,
                   bool(perms & ADMIN_READ), bool(perms & ADMIN_WRITE), bool(perms & PUBLIC_READ),
                   bool(perms & PUBLIC_WRITE))

    @classmethod
    def decode(cls, raw: bytes) -> "HandleValue":
        reader = Reader(raw)
        value = cls.read(reader)
        reader.finish("handle value")
        return value

    def type_matches(self, wanted: str) -> bool:
        return type_matches(self.type, wanted)

    def with_changes(self, **changes) -> "HandleValue":
        return replace(self, **changes)


def encode_value(index: int, value_type: str, data: bytes, ttl_type: int, ttl: int, timestamp: int,
                 references: Sequence[Reference], permissions: int) -> bytes:
    """The RFC 3652 section 2.2.3 encoding of one value, from its fields (resolution encodes stored rows
    with this directly, without making HandleValue objects first)."""
    refs = b"".join([r.encode() for r in references]) if references else b""
    raw_type = value_type.encode("utf-8")
    return b"".join((_VALUE_HEAD(index, timestamp & 0xFFFFFFFF, ttl_type, ttl, permissions), _U32(len(raw_type)),
                     raw_type, _U32(len(data)), data, _U32(len(references)), refs))


def type_matches(value_type: str, wanted: str) -> bool:
    """Protocol type queries (ASCII case-insensitive): ``URL`` is that type only; a type ending in
    ``.`` selects its hierarchy (``URL.`` matches URL and URL.mirror)."""
    mine, wanted = value_type.upper(), wanted.upper()
    if wanted.endswith("."):
        return mine.startswith(wanted) or mine == wanted[:-1]
    return mine == wanted


def select_values(values: Sequence[HandleValue], indexes: Sequence[int] = (),
                  types: Sequence[str] = ()) -> list[HandleValue]:
    """The values a request's index and type lists ask for (all when both are empty)."""
    if not indexes and not types:
        return list(values)
    return [v for v in values if v.index in indexes or any(v.type_matches(t) for t in types)]


# ---------------------------------------------------------------------------
# HS_ADMIN (RFC 3651 section 3.2.1)

@dataclass(frozen=True)
class AdminRecord:
    """Who may administer a handle (an admin handle and the index of its key or group) and what they may do."""

    handle: str
    index: int
    permissions: int = HANDLE_ADMIN_PERMISSIONS

    def encode(self) -> bytes:
        return struct.pack(">H", self.permissions & ALL_ADMIN_PERMISSIONS) + text(self.handle) + u32(self.index)

    @classmethod
    def decode(cls, raw: bytes) -> "AdminRecord":
        reader = Reader(raw)
        permissions = reader.u16()
        handle = reader.text(MAX_HANDLE_BYTES, "admin handle")
        index = reader.i32()
        # Handle.Net writes some legacy records with trailing bytes (the old legacy byte): tolerate them.
        return cls(handle, index, permissions & ALL_ADMIN_PERMISSIONS)

    def allows(self, permission: int) -> bool:
        return bool(self.permissions & permission)

    @property
    def permission_string(self) -> str:
        """The Handle.Net REST form: 12 characters, List_Handles first, Add_Handle last."""
        return format(self.permissions & ALL_ADMIN_PERMISSIONS, "012b")

    @staticmethod
    def parse_permission_string(raw: str) -> int:
        if len(raw) != 12 or set(raw) - {"0", "1"}:
            raise ValueFormatError(f"permissions {raw[:20]!r} must be 12 characters of 0 and 1")
        return int(raw, 2)


# ---------------------------------------------------------------------------
# HS_VLIST (RFC 3651 section 3.2.7)

def encode_vlist(references: Sequence[Reference]) -> bytes:
    return u32(len(references)) + b"".join(r.encode() for r in references)


def decode_vlist(raw: bytes) -> list[Reference]:
    reader = Reader(raw)
    n = reader.count(8, 10_000, "value list")
    refs = [Reference.read(reader) for _ in range(n)]
    reader.finish("value list")
    return refs


# ---------------------------------------------------------------------------
# HS_SITE (RFC 3651 section 3.2.2)

# Interface types and transports (RFC 3651 section 3.2.2).
ST_OUT_OF_SERVICE, ST_ADMIN, ST_QUERY, ST_ADMIN_AND_QUERY = 0, 1, 2, 3
SP_HDL_UDP, SP_HDL_TCP, SP_HDL_HTTP = 0, 1, 2
PRIMARY_SITE, MULTI_PRIMARY = 0x80, 0x40


@dataclass(frozen=True)
class Interface:
    kind: int  # ST_*
    transport: int  # SP_*
    port: int


@dataclass(frozen=True)
class ServerRecord:
    server_id: int
    address: bytes  # 16 octets; IPv4 in the last four
    public_key: bytes  # HS_PUBKEY-encoded
    interfaces: tuple[Interface, ...]

    @staticmethod
    def address_bytes(ip: str) -> bytes:
        import ipaddress

        parsed = ipaddress.ip_address(ip)
        return parsed.packed.rjust(16, b"\0")


@dataclass(frozen=True)
class SiteInfo:
    """A service site: its version, serial number, attributes and servers."""

    serial: int
    servers: tuple[ServerRecord, ...]
    attributes: tuple[tuple[str, str], ...] = ()
    protocol_version: tuple[int, int] = (2, 11)
    data_format_version: int = 1
    primary: bool = True
    multi_primary: bool = False
    hash_option: int = 0
    hash_filter: bytes = b""

    def encode(self) -> bytes:
        out = [struct.pack(">HBBHBB", self.data_format_version, *self.protocol_version, self.serial,
                           (PRIMARY_SITE if self.primary else 0) | (MULTI_PRIMARY if self.multi_primary else 0),
                           self.hash_option), blob(self.hash_filter), u32(len(self.attributes))]
        out += [text(name) + text(value) for name, value in self.attributes]
        out.append(u32(len(self.servers)))
        for server in self.servers:
            out.append(u32(server.server_id) + server.address.rjust(16, b"\0")[-16:] + blob(server.public_key)
                       + u32(len(server.interfaces)))
            out += [struct.pack(">BBI", i.kind, i.transport, i.port) for i in server.interfaces]
        return b"".join(out)

    @classmethod
    def decode(cls, raw: bytes) -> "SiteInfo":
        reader = Reader(raw)
        fmt, major, minor, serial, flags, hash_option = struct.unpack(">HBBHBB", reader.take(8, "site info"))
        hash_filter = reader.blob(1024, "hash filter")
        attributes = tuple((reader.text(4096, "attribute name"), reader.text(65536, "attribute value"))
                           for _ in range(reader.count(8, 1000, "attributes")))
        servers = []
        for _ in range(reader.count(28, 1000, "servers")):
            server_id = reader.i32()
            address = reader.take(16, "server address")
            key = reader.blob(65536, "server public key")
            interfaces = tuple(Interface(*struct.unpack(">BBI", reader.take(6, "interface")))
                               for _ in range(reader.count(6, 100, "interfaces")))
            servers.append(ServerRecord(server_id, address, key, interfaces))
        reader.finish("site info")
        return cls(serial, tuple(servers), attributes, (major, minor), fmt, bool(flags & PRIMARY_SITE),
                   bool(flags & MULTI_PRIMARY), hash_option, hash_filter)


# ---------------------------------------------------------------------------
# HS_PUBKEY (RFC 3651 section 3.2.4): RSA keys

RSA_PUBLIC = "RSA_PUB_KEY"


def _unsigned(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def _signed_bytes(n: int) -> bytes:
    """Two's-complement big-endian with a sign octet when needed (Java's BigInteger.toByteArray)."""
    return n.to_bytes(n.bit_length() // 8 + 1, "big")


def encode_rsa_public_key(exponent: int, modulus: int) -> bytes:
    return text(RSA_PUBLIC) + b"\0\0" + blob(_signed_bytes(exponent)) + blob(_signed_bytes(modulus))


def decode_rsa_public_key(raw: bytes) -> tuple[int, int]:
    """(exponent, modulus) of an HS_PUBKEY RSA key."""
    reader = Reader(raw)
    kind = reader.text(64, "key type")
    if kind != RSA_PUBLIC:
        raise ValueFormatError(f"key type {kind[:40]!r} is not {RSA_PUBLIC}")
    reader.take(2, "key flags")
    exponent = _unsigned(reader.blob(4096, "exponent"))
    modulus = _unsigned(reader.blob(4096, "modulus"))
    reader.finish("public key")
    return exponent, modulus
