"""RFC 3652 messages: envelope, header, body and credential, and the request and response bodies we use.

A message on the wire is a 20-octet envelope, then the message proper: a
24-octet header, the body (``BodyLength`` octets) and the credential (a 4-octet
length, then that many octets). Parsing checks every length against what
arrived before it looks at anything else; a message that does not add up is a
``ProtocolError`` carrying the response code to answer with.
"""

from __future__ import annotations

import hashlib
import re
import struct
import time
from dataclasses import dataclass
from typing import Callable

from agency.handles.values import (
    MAX_HANDLE_BYTES, MAX_TYPE_BYTES, HandleValue, Reader, ValueFormatError, blob, text, u32,
)

ENVELOPE_SIZE, HEADER_SIZE = 20, 24
# Versions: what we speak, and the oldest we answer in (2.0 and 1.x clients are refused).
HIGHEST_VERSION, LOWEST_VERSION = (2, 11), (2, 1)
# Envelope flags (the high bits of octet 2; the low two bits carry the suggested major version).
ENV_COMPRESSED, ENV_ENCRYPTED, ENV_TRUNCATED = 0x80, 0x40, 0x20
# UDP: CNRI's clients read 512-octet datagrams; longer messages go in several, numbered by SequenceNumber.
UDP_PACKET_SIZE = 512
UDP_DATA_SIZE = UDP_PACKET_SIZE - ENVELOPE_SIZE

# Operation codes (RFC 3652 section 2.2.2.1).
OC_RESOLUTION, OC_GET_SITEINFO = 1, 2
OC_CREATE_HANDLE, OC_DELETE_HANDLE, OC_ADD_VALUE, OC_REMOVE_VALUE, OC_MODIFY_VALUE = 100, 101, 102, 103, 104
OC_LIST_HANDLE, OC_LIST_NA = 105, 106
OC_CHALLENGE_RESPONSE, OC_VERIFY_RESPONSE = 200, 201
OC_SESSION_SETUP, OC_SESSION_TERMINATE, OC_SESSION_EXCHANGEKEY = 400, 401, 402
ADMIN_OPERATIONS = frozenset({OC_CREATE_HANDLE, OC_DELETE_HANDLE, OC_ADD_VALUE, OC_REMOVE_VALUE, OC_MODIFY_VALUE})

# Response codes (RFC 3652 section 2.2.2.2, and the numbers current clients use).
RC_SUCCESS, RC_ERROR, RC_SERVER_BUSY, RC_PROTOCOL_ERROR, RC_OPERATION_DENIED = 1, 2, 3, 4, 5
RC_HANDLE_NOT_FOUND, RC_HANDLE_ALREADY_EXIST, RC_INVALID_HANDLE = 100, 101, 102
RC_VALUES_NOT_FOUND, RC_VALUE_ALREADY_EXIST, RC_VALUE_INVALID = 200, 201, 202
RC_SERVER_NOT_RESP = 301
RC_NOT_AUTHORIZED, RC_ACCESS_DENIED, RC_AUTHEN_NEEDED, RC_AUTHEN_FAILED = 400, 401, 402, 403
RC_INVALID_CREDENTIAL, RC_AUTHEN_TIMEOUT, RC_AUTHEN_ERROR = 404, 405, 406

# Operation flags (RFC 3652 section 2.2.2.3, plus the three later bits CNRI's clients send).
OF_AUTHORITATIVE, OF_CERTIFIED, OF_ENCRYPT, OF_RECURSIVE = 0x80000000, 0x40000000, 0x20000000, 0x10000000
OF_CACHE_AUTH, OF_CONTINUOUS, OF_KEEP_ALIVE, OF_PUBLIC_ONLY = 0x08000000, 0x04000000, 0x02000000, 0x01000000
OF_REQUEST_DIGEST, OF_OVERWRITE, OF_MINT, OF_DO_NOT_REFER = 0x00800000, 0x00400000, 0x00200000, 0x00100000

HASH_MD5, HASH_SHA1, HASH_SHA256 = 1, 2, 3
MAX_LIST = 1024  # indexes or types in one request
MAX_VALUES = 1024  # values in one request
RESPONSE_LIFETIME_SECONDS = 12 * 3600
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


_ENVELOPE_FIELDS = struct.Struct(">BBBBIIIi").unpack_from
_HEADER_FIELDS = struct.Struct(">IIIHBBIi").unpack_from
_ENVELOPE = struct.Struct(">BBBBIIII").pack
_HEADER = struct.Struct(">IIIHBBII").pack
_NO_CREDENTIAL = b"\0\0\0\0"
# Makes a response's Message Credential (its length first) from what it signs (``signed_envelope_fields``, then
# the response's header and body): signing.ResponseSigner.credential.
Credential = Callable[[bytes], bytes]


class ProtocolError(Exception):
    """A message we cannot act on, and the response code that says why."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class Envelope:
    major: int
    minor: int
    flags: int
    suggested: tuple[int, int]
    session_id: int
    request_id: int
    sequence: int
    length: int

    @classmethod
    def decode(cls, raw: bytes) -> "Envelope":
        if len(raw) < ENVELOPE_SIZE:
            raise ProtocolError(RC_PROTOCOL_ERROR, f"envelope is {len(raw)} octets; it has {ENVELOPE_SIZE}")
        major, minor, flag_byte, suggested_minor, session, request, sequence, length = _ENVELOPE_FIELDS(raw)
        suggested_major = flag_byte & 0x03
        suggested = (suggested_major, suggested_minor) if suggested_major else (major, minor)
        return cls(major, minor, flag_byte & 0xFC, suggested, session, request, sequence, length)

    def encode(self) -> bytes:
        return struct.pack(">BBBBIIII", self.major, self.minor, (self.flags & 0xFC) | (self.suggested[0] & 0x03),
                           self.suggested[1], self.session_id, self.request_id, self.sequence, self.length)

    @property
    def version(self) -> tuple[int, int]:
        return (self.major, self.minor)

    @property
    def truncated(self) -> bool:
        return bool(self.flags & ENV_TRUNCATED)


@dataclass(slots=True)
class Header:
    op_code: int
    response_code: int
    op_flags: int
    site_serial: int
    recursion_count: int
    expiration: int
    body_length: int

    @classmethod
    def decode(cls, raw: bytes) -> "Header":
        op, rc, flags, serial, recursion, _reserved, expiration, body_length = _HEADER_FIELDS(raw)
        return cls(op, rc, flags, serial, recursion, expiration, body_length)

    def encode(self) -> bytes:
        return struct.pack(">IIIHBBII", self.op_code, self.response_code, self.op_flags & 0xFFFFFFFF,
                           self.site_serial & 0xFFFF, self.recursion_count & 0xFF, 0, self.expiration & 0xFFFFFFFF,
                           self.body_length)


@dataclass(slots=True)
class Message:
    """A received message: its envelope, header, body and credential octets."""

    envelope: Envelope
    header: Header
    body: bytes
    credential: bytes
    signed_part: bytes  # header and body: what a request digest covers
    payload: bytes = b""  # the whole message after the envelope, as received

    def flag(self, bit: int) -> bool:
        return bool(self.header.op_flags & bit)

    def digest(self, hash_type: int = HASH_SHA1) -> bytes:
        """The request digest (RFC 3652 section 2.2.4): hash type octet, then the hash of header and body."""
        algorithm = {HASH_MD5: hashlib.md5, HASH_SHA1: hashlib.sha1, HASH_SHA256: hashlib.sha256}[hash_type]
        return bytes([hash_type]) + algorithm(self.signed_part).digest()


def check_version(envelope: Envelope) -> None:
    if envelope.version < LOWEST_VERSION or envelope.major != HIGHEST_VERSION[0]:
        raise ProtocolError(RC_PROTOCOL_ERROR, f"protocol version {envelope.major}.{envelope.minor} is not "
                                               f"supported: this server speaks 2.1 to 2.{HIGHEST_VERSION[1]}")


def answer_version(envelope: Envelope) -> tuple[int, int]:
    """The highest version both sides speak: the client's suggested one, capped at ours, never below 2.1."""
    return spoken_version(max(envelope.suggested, envelope.version))


def spoken_version(wanted: tuple[int, int]) -> tuple[int, int]:
    """``wanted`` brought within the versions we speak (2.1 to ours)."""
    return max(LOWEST_VERSION, min(HIGHEST_VERSION, wanted))


@dataclass(slots=True)
class PlainResolution:
    """A whole, unsigned resolution request in a version we speak, not asking for a certified (signed) response,
    read from its octets without parsing the body: what a kept answer is looked up by (``body``) and what its
    response echoes."""

    body: bytes
    signed_part: bytes  # header and body: what a request digest covers
    session_id: int
    request_id: int
    version: tuple[int, int]  # the one to answer in
    op_flags: int
    recursion_count: int


def plain_resolution(envelope_octets: bytes, payload: bytes, max_bytes: int) -> PlainResolution | None:
    """``payload`` (the message after the envelope) as a plain resolution request, or None when it is anything
    else, or anything ``parse_message`` and ``check_version`` would refuse: it is then parsed in full.

    Resolution is the hot path, and an answer kept for the same body needs nothing else from the request, so
    this reads the envelope and header with two unpacks and checks only what decides that."""
    if len(envelope_octets) < ENVELOPE_SIZE or len(payload) < HEADER_SIZE:
        return None
    major, minor, flag_byte, suggested_minor, session, request, sequence, length = _ENVELOPE_FIELDS(envelope_octets)
    if (major != HIGHEST_VERSION[0] or (major, minor) < LOWEST_VERSION or flag_byte & 0xE0 or sequence
            or length != len(payload) or length > max_bytes):
        return None
    op, rc, flags, _serial, recursion, _reserved, _expiration, body_length = _HEADER_FIELDS(payload)
    body_end = HEADER_SIZE + body_length
    if op != OC_RESOLUTION or rc or flags & OF_CERTIFIED or body_length < 0 or not (body_end == length or (
            body_end + 4 == length and payload[body_end:] == _NO_CREDENTIAL)):
        return None
    suggested = (flag_byte & 0x03, suggested_minor) if flag_byte & 0x03 else (major, minor)
    version = spoken_version(max(suggested, (major, minor)))
    return PlainResolution(payload[HEADER_SIZE:body_end], payload[:body_end], session, request, version, flags,
                           recursion)


def plain_resolution_response(request: PlainResolution, response_code: int, body: bytes,
                              site_serial: int = 1) -> bytes:
    """The response to ``request``: octet for octet what ``response_bytes`` makes for the same request parsed
    in full (the expiration time aside, which is the clock's)."""
    digest = b""
    if request.op_flags & OF_REQUEST_DIGEST:
        digest = bytes([HASH_SHA1]) + hashlib.sha1(request.signed_part).digest()
    return _packed_response(OC_RESOLUTION, response_code, digest, body, site_serial, request.recursion_count,
                            request.version, HIGHEST_VERSION, request.session_id, request.request_id)


def parse_message(envelope: Envelope, payload: bytes, max_bytes: int) -> Message:
    """The message proper (everything after the envelope), checked against the envelope and ``max_bytes``."""
    if envelope.length < HEADER_SIZE or envelope.length > max_bytes:
        raise ProtocolError(RC_PROTOCOL_ERROR, f"message length {envelope.length} is outside "
                                               f"{HEADER_SIZE}..{max_bytes}")
    if len(payload) != envelope.length:
        raise ProtocolError(RC_PROTOCOL_ERROR, f"message is {len(payload)} octets; the envelope says "
                                               f"{envelope.length}")
    if envelope.flags & (ENV_COMPRESSED | ENV_ENCRYPTED):
        raise ProtocolError(RC_PROTOCOL_ERROR, "compressed or encrypted messages are not supported here")
    header = Header.decode(payload)
    if header.body_length < 0 or HEADER_SIZE + header.body_length > len(payload):
        raise ProtocolError(RC_PROTOCOL_ERROR, f"body length {header.body_length} points past the end "
                                               "of the message")
    body_end = HEADER_SIZE + header.body_length
    credential = b""
    rest = len(payload) - body_end
    if rest:
        if rest < 4:
            raise ProtocolError(RC_PROTOCOL_ERROR, "credential length is cut short")
        n = struct.unpack(">i", payload[body_end:body_end + 4])[0]
        if n < 0 or body_end + 4 + n > len(payload):
            raise ProtocolError(RC_PROTOCOL_ERROR, f"credential length {n} points past the end of the message")
        credential = payload[body_end + 4:body_end + 4 + n]
    return Message(envelope, header, payload[HEADER_SIZE:body_end], credential, payload[:body_end], payload)


# ---------------------------------------------------------------------------
# Request bodies

def read_handle(reader: Reader) -> str:
    """A handle from a request: at most 2,048 octets of UTF-8, no control characters."""
    try:
        raw = reader.blob(MAX_HANDLE_BYTES, "handle")
    except ValueFormatError as exc:
        raise ProtocolError(RC_INVALID_HANDLE if "length" in str(exc) else RC_PROTOCOL_ERROR,
                            f"handle: {exc}") from None
    try:
        handle = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(RC_INVALID_HANDLE, "the handle is not valid UTF-8") from None
    if _CONTROL.search(handle):
        raise ProtocolError(RC_INVALID_HANDLE, "the handle contains a control character")
    return handle


def _body(message: Message):
    return Reader(message.body)


def _decoded(parse):
    """Turn a value-format error inside a body into a protocol error."""
    def wrapper(message):
        try:
            return parse(message)
        except ValueFormatError as exc:
            raise ProtocolError(RC_PROTOCOL_ERROR, str(exc)) from None
    wrapper.__doc__ = parse.__doc__
    return wrapper


@dataclass(frozen=True)
class Resolution:
    handle: str
    indexes: tuple[int, ...]
    types: tuple[str, ...]


_I32_AT = struct.Struct(">i").unpack_from
_PLAIN_HANDLE = re.compile(rb"^[\x20-\x7e]{1,2048}$")


def resolution_request(message: Message) -> Resolution:
    """Handle, IndexList, TypeList (RFC 3652 section 3.2.1)."""
    return resolution_query(message.body)


@_decoded
def resolution_query(body: bytes) -> Resolution:
    """A resolution request's body (handle, IndexList, TypeList)."""
    # The common case, read directly: a printable ASCII handle and no index or type list.
    if len(body) >= 12:
        length = _I32_AT(body, 0)[0]
        if 0 < length <= MAX_HANDLE_BYTES and len(body) == length + 12 and body[length + 4:] == b"\0" * 8:
            raw = body[4:4 + length]
            if _PLAIN_HANDLE.match(raw):
                return Resolution(raw.decode("ascii"), (), ())
    reader = Reader(body)
    handle = read_handle(reader)
    indexes = tuple(reader.i32() for _ in range(reader.count(4, MAX_LIST, "index list")))
    types = tuple(reader.text(MAX_TYPE_BYTES, "type") for _ in range(reader.count(4, MAX_LIST, "type list")))
    return Resolution(handle, indexes, types)


@_decoded
def handle_only(message: Message) -> str:
    """A body that is one handle (delete handle, site information)."""
    reader = _body(message)
    return read_handle(reader)


@dataclass(frozen=True)
class ValuesRequest:
    handle: str
    values: tuple[HandleValue, ...]


@_decoded
def values_request(message: Message) -> ValuesRequest:
    """Handle and ValueList: create handle, add value, modify value."""
    reader = _body(message)
    handle = read_handle(reader)
    values = tuple(HandleValue.read(reader) for _ in range(reader.count(22, MAX_VALUES, "value list")))
    return ValuesRequest(handle, values)


@dataclass(frozen=True)
class IndexesRequest:
    handle: str
    indexes: tuple[int, ...]


@_decoded
def remove_request(message: Message) -> IndexesRequest:
    """Handle and IndexList: remove values."""
    reader = _body(message)
    handle = read_handle(reader)
    return IndexesRequest(handle, tuple(reader.i32() for _ in range(reader.count(4, MAX_LIST, "index list"))))


@dataclass(frozen=True)
class ChallengeAnswer:
    auth_type: str
    handle: str
    index: int
    answer: bytes


@_decoded
def challenge_answer(message: Message) -> ChallengeAnswer:
    """AuthenticationType, KeyHandle, KeyIndex, ChallengeResponse (RFC 3652 section 3.5.2)."""
    reader = _body(message)
    auth_type = reader.text(64, "authentication type")
    handle = read_handle(reader)
    index = reader.i32()
    return ChallengeAnswer(auth_type, handle, index, reader.blob(4096, "challenge response"))


# ---------------------------------------------------------------------------
# Responses


def response_bytes(request: Message, response_code: int, body: bytes = b"", *, session_id: int | None = None,
                   with_digest: bool | None = None, op_code: int | None = None,
                   request_id: int | None = None, site_serial: int = 1, suggested: tuple[int, int] | None = None,
                   version: tuple[int, int] | None = None, credential: Credential | None = None) -> bytes:
    """The message proper (header, body, credential) and its envelope, answering ``request``. The credential is
    empty unless ``credential`` is given (to sign a certified response)."""
    include_digest = request.flag(OF_REQUEST_DIGEST) if with_digest is None else with_digest
    envelope = request.envelope
    return _packed_response(request.header.op_code if op_code is None else op_code, response_code,
                            request.digest() if include_digest else b"", body, site_serial,
                            request.header.recursion_count, version or answer_version(envelope),
                            suggested or HIGHEST_VERSION, envelope.session_id if session_id is None else session_id,
                            envelope.request_id if request_id is None else request_id, credential)


def _packed_response(op_code: int, response_code: int, digest: bytes, body: bytes, site_serial: int,
                     recursion_count: int, version: tuple[int, int], suggested: tuple[int, int], session_id: int,
                     request_id: int, credential: Credential | None = None) -> bytes:
    """Envelope, header, digest (if any) and body, then the credential: empty, or what ``credential`` makes of
    the signed envelope fields, header and body. Packed directly (no intermediate objects): this runs for every
    resolution."""
    length = len(digest) + len(body)
    header = _HEADER(op_code, response_code, OF_REQUEST_DIGEST if digest else 0, site_serial & 0xFFFF,
                     recursion_count & 0xFF, 0, (int(time.time()) + RESPONSE_LIFETIME_SECONDS) & 0xFFFFFFFF, length)
    signed = _NO_CREDENTIAL
    if credential is not None:
        signed = credential(b"".join((signed_envelope_fields(version, suggested, session_id, request_id), header,
                                      digest, body)))
    return b"".join((_ENVELOPE(version[0], version[1], suggested[0] & 0x03, suggested[1], session_id, request_id, 0,
                               HEADER_SIZE + length + len(signed)),
                     header, digest, body, signed))


def signed_envelope_fields(version: tuple[int, int], suggested: tuple[int, int], session_id: int,
                           request_id: int) -> bytes:
    """What a response's signature covers before its header and body, by the response's version.

    RFC 3652 signs the header and body only, and so does CNRI's client library (9.2) up to version 2.5; from
    2.6 on it also signs envelope fields (never the flags, sequence number or length, which UDP packets
    change), followed by its session counter (0: no session here). Found by experiment with that library:
    2.8 and up: major, minor, suggested major, suggested minor, session id, request id, counter (16 octets);
    2.7: major, minor, session id, request id, counter (14); 2.6: major, minor, then the first two octets of
    the session id, the counter and six zero octets (14; the counter overwrites the rest of the session id)."""
    if version < (2, 6):
        return b""
    if version == (2, 6):
        return bytes(version) + u32(session_id)[:2] + bytes(10)
    if version == (2, 7):
        return bytes(version) + struct.pack(">III", session_id & 0xFFFFFFFF, request_id & 0xFFFFFFFF, 0)
    return bytes((*version, *suggested)) + struct.pack(">III", session_id & 0xFFFFFFFF, request_id & 0xFFFFFFFF, 0)


def unparsed_error(envelope: Envelope, header: Header | None, response_code: int, message: str, *,
                   site_serial: int = 1, credential: Credential | None = None) -> bytes:
    """An error answering a message that could not be parsed (``header``: its header, if that much was read):
    no request digest, in the envelope's own version brought within ours."""
    stub = Message(envelope, header or Header(0, 0, 0, 0, 0, 0, 0), b"", b"", b"")
    return response_bytes(stub, response_code, error_body(message), with_digest=False, site_serial=site_serial,
                          version=spoken_version(envelope.version), credential=credential)


def error_body(message: str) -> bytes:
    return text(message[:1000])


def resolution_body(handle: str, values) -> bytes:
    return resolution_body_encoded(handle, [v.encode() for v in values])


def resolution_body_encoded(handle: str, encoded_values: list[bytes]) -> bytes:
    return text(handle) + u32(len(encoded_values)) + b"".join(encoded_values)


def challenge_body(nonce: bytes) -> bytes:
    """After the request digest: the nonce (RFC 3652 section 3.5.1)."""
    return blob(nonce)


def udp_packets(message: bytes) -> list[bytes]:
    """A whole message (envelope first) as datagrams CNRI's clients reassemble: each has its own envelope,
    the sequence number counts packets, the length is the whole message's, TC marks a split message."""
    proper = message[ENVELOPE_SIZE:]
    if len(proper) <= UDP_DATA_SIZE:
        return [message]
    envelope = Envelope.decode(message)
    flags = envelope.flags | ENV_TRUNCATED
    packets = []
    for n, start in enumerate(range(0, len(proper), UDP_DATA_SIZE)):
        head = Envelope(envelope.major, envelope.minor, flags, envelope.suggested, envelope.session_id,
                        envelope.request_id, n, len(proper))
        packets.append(head.encode() + proper[start:start + UDP_DATA_SIZE])
    return packets
