"""Certified responses (RFC 3652 section 2.2.4): signed with the server's key when the request sets CT, else not.

The credential is read here field by field from the RFC's layout (not with
agency's codec), and the signature checked with the public key the site
information gives clients.
"""

from __future__ import annotations

import struct
from types import SimpleNamespace

import pytest
from batchgen import Article
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from agency.handles.protocol import messages as m
from agency.handles.protocol.answer_cache import AnswerCache, change_marker
from agency.handles.protocol.directory import StoreDirectory
from agency.handles.protocol.service import HandleService
from agency.handles.protocol.signing import ResponseSigner
from agency.handles.protocol.site import SiteSettings, public_key_bytes, site_info
from agency.handles.public_keys import decode_public_key
from hdl_wire import (  # noqa: F401
    handle_port, parse, request, resolution, tcp_exchange, text, u32, udp_exchange, udp_message,
)
from resolve_data import register

CERTIFIED = 0x59000000  # what CNRI's client sends with --certify: CT | RECU | CACR | PUBL
PLAIN = 0x19000000


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def registered(client, svc, alice):
    register(client, svc, [Article("10.5555/Signed.1", url="https://example.org/signed")])


def signing_service(svc, key, answers: AnswerCache | None = None) -> HandleService:
    record = site_info(SiteSettings("127.0.0.1", 2641, 0, 1, ""), public_key_bytes(key)).encode()
    return HandleService(svc.db, StoreDirectory(svc.db, svc.settings.handle_ttl), record, answers=answers,
                         signer=ResponseSigner(key))


def ask(service: HandleService, data: bytes) -> bytes:
    return service.answer_octets(data[:m.ENVELOPE_SIZE], data[m.ENVELOPE_SIZE:], "127.0.0.1")


def credential(response: bytes) -> tuple[bytes, bytes]:
    """The signed part (header and body) and the credential's octets, checked against the message's lengths."""
    message_length = struct.unpack(">I", response[16:20])[0]
    assert len(response) == 20 + message_length
    body_end = 44 + struct.unpack(">I", response[40:44])[0]
    length = struct.unpack(">I", response[body_end:body_end + 4])[0]
    assert body_end + 4 + length == len(response)
    return response[20:body_end], response[body_end + 4:]


def read_credential(raw: bytes) -> dict:
    """Version, Reserved, Options, Signer <handle, index>, Type, SignedInfo <length, DigestAlgorithm, SignedData>."""
    version, reserved, options = struct.unpack(">BBH", raw[:4])
    at = 4

    def string() -> bytes:
        nonlocal at
        n = struct.unpack(">I", raw[at:at + 4])[0]
        at += 4 + n
        return raw[at - n:at]

    signer = string()
    index = struct.unpack(">I", raw[at:at + 4])[0]
    at += 4
    kind = string()
    info_length = struct.unpack(">I", raw[at:at + 4])[0]
    at += 4
    assert info_length == len(raw) - at  # SignedInfo runs to the end of the credential
    digest = string()
    signature = string()
    assert at == len(raw)
    return {"version": version, "reserved": reserved, "options": options, "signer": (signer, index),
            "type": kind.decode(), "digest": digest.decode(), "signature": signature}


def envelope_part(response: bytes) -> bytes:
    """What the signature covers before the header: nothing below 2.6 (as RFC 3652 says), else envelope fields
    (CNRI's library 9.2, found by experiment; the session counter is 0 without a session)."""
    major, minor, flag_byte, suggested_minor, session, request_id = struct.unpack(">BBBBII", response[:12])
    if (major, minor) < (2, 6):
        return b""
    if (major, minor) == (2, 6):
        return bytes([major, minor]) + response[4:6] + bytes(10)
    if (major, minor) == (2, 7):
        return bytes([major, minor]) + struct.pack(">III", session, request_id, 0)
    return bytes([major, minor, flag_byte & 0x03, suggested_minor]) + struct.pack(">III", session, request_id, 0)


def assert_signed(response: bytes, key: rsa.RSAPrivateKey) -> dict:
    signed, raw = credential(response)
    fields = read_credential(raw)
    assert (fields["version"], fields["reserved"], fields["options"]) == (0, 0, 0)
    assert (fields["type"], fields["digest"]) == ("HS_SIGNED", "SHA-256")
    public = decode_public_key(public_key_bytes(key))  # as a client reads it from HS_SITE
    public.verify(fields["signature"], envelope_part(response) + signed, padding.PKCS1v15(), hashes.SHA256())
    return fields


@pytest.mark.parametrize("version", [(2, 11), (2, 8), (2, 7), (2, 6), (2, 5), (2, 1)])
def test_a_certified_resolution_is_signed_over_its_header_and_body(registered, svc, key, version):
    service = signing_service(svc, key)
    response = ask(service, resolution("10.5555/signed.1", flags=CERTIFIED, version=version, suggested=version,
                                       session=0x01020304, request_id=0x0A0B0C0D))
    assert parse(response)["rc"] == m.RC_SUCCESS and parse(response)["version"] == version
    assert b"https://example.org/signed" in parse(response)["body"]
    fields = assert_signed(response, key)
    assert len(fields["signature"]) == 256  # RSA-2048
    # Any octet changed in what is signed breaks the signature.
    signed, _raw = credential(response)
    tampered = signed.replace(b"https://example.org/signed", b"https://example.org/forged")
    with pytest.raises(InvalidSignature):
        key.public_key().verify(fields["signature"], envelope_part(response) + tampered, padding.PKCS1v15(),
                                hashes.SHA256())


def test_an_uncertified_response_keeps_the_empty_credential(registered, svc, key):
    service = signing_service(svc, key)
    for data in (resolution("10.5555/signed.1", flags=PLAIN), request(m.OC_GET_SITEINFO, text("/"), flags=PLAIN),
                 resolution("10.5555/none", flags=PLAIN)):
        response = ask(service, data)
        signed, raw = credential(response)
        assert raw == b"" and response.endswith(b"\0\0\0\0")


def test_certified_site_information(registered, svc, key):
    service = signing_service(svc, key)
    for data in (request(m.OC_GET_SITEINFO, text("/"), flags=CERTIFIED),
                 resolution("/", flags=CERTIFIED)):  # the site handle resolved answers the site information too
        response = ask(service, data)
        assert parse(response)["op"] == m.OC_GET_SITEINFO and parse(response)["body"] == service.site_record
        assert_signed(response, key)


def test_certified_errors_are_signed(registered, svc, key):
    service = signing_service(svc, key)
    proper = resolution("10.5555/signed.1", flags=CERTIFIED)
    cases = {
        m.RC_HANDLE_NOT_FOUND: resolution("10.5555/none", flags=CERTIFIED),
        m.RC_SERVER_NOT_RESP: resolution("10.9999/elsewhere", flags=CERTIFIED),
        m.RC_OPERATION_DENIED: request(m.OC_LIST_HANDLE, text("10.5555"), flags=CERTIFIED),
        # Malformed: answered before the body is read (the envelope and header are enough to sign with).
        m.RC_PROTOCOL_ERROR: proper[:40] + u32(500) + proper[44:],
        m.RC_INVALID_HANDLE: resolution("10.5555/control\x01", flags=CERTIFIED),
    }
    for code, data in cases.items():
        response = ask(service, data)
        assert parse(response)["rc"] == code
        assert_signed(response, key)


def test_a_certified_resolution_takes_the_full_path_and_answers_the_same_octets(registered, svc, key, monkeypatch):
    """Kept answers serve certified requests too, signed; with the clock held, the fast path's and the full
    path's responses are the same octets (PKCS #1 v1.5 signatures are deterministic)."""
    marker = change_marker(svc.db.engine)
    if marker is None:
        pytest.skip("no answer cache on this database (PostgreSQL has no cheap change check)")
    monkeypatch.setattr(m, "time", SimpleNamespace(time=lambda: 1_800_000_000))
    cached = signing_service(svc, key, AnswerCache(marker, 100, 1 << 20))
    uncached = signing_service(svc, key)
    certified = [resolution("10.5555/signed.1", flags=CERTIFIED), resolution("10.5555/none", flags=CERTIFIED),
                 resolution("10.5555/signed.1", flags=CERTIFIED | m.OF_REQUEST_DIGEST, request_id=99),
                 resolution("10.5555/signed.1", flags=CERTIFIED, version=(2, 1), suggested=(2, 1))]
    for data in certified:
        assert m.plain_resolution(data[:20], data[20:], 1 << 20) is None
    for _ in range(2):  # read, then kept
        for data in certified + [resolution("10.5555/signed.1", flags=PLAIN)]:
            expected, got = ask(uncached, data), ask(cached, data)
            assert got == expected
            if parse(data)["flags"] & m.OF_CERTIFIED:
                assert_signed(got, key)
            else:
                assert credential(got)[1] == b""
    assert len(cached.answers) == 2  # one per body: certified or not, the same answer is kept


@pytest.mark.slow
def test_both_transports_sign_and_udp_splits_the_signed_message(registered, svc, handle_port):
    """The live server, with the key kept in the data folder: signed over TCP, and over UDP where the signed
    site information (longer than one datagram) arrives in numbered packets."""
    from agency.handles.protocol.site import load_or_create_private_key

    key = load_or_create_private_key(svc.settings.data_dir)
    for data in (resolution("10.5555/signed.1", flags=CERTIFIED), request(m.OC_GET_SITEINFO, text("/"),
                                                                           flags=CERTIFIED)):
        assert_signed(tcp_exchange(handle_port, data), key)
        packets = udp_exchange(handle_port, data)
        assert_signed(udp_message(packets), key)
    assert len(udp_exchange(handle_port, request(m.OC_GET_SITEINFO, text("/"), flags=CERTIFIED))) > 1


@pytest.mark.slow
def test_a_message_too_long_is_still_refused(svc, handle_port):
    """Announced over the limit: refused without reading it (over TCP unsigned, its flags unread; over UDP,
    where the header came along, signed when CT is set)."""
    from agency.handles.protocol.site import load_or_create_private_key

    key = load_or_create_private_key(svc.settings.data_dir)
    data = resolution("10.5555/signed.1", flags=CERTIFIED)
    too_long = data[:16] + u32(svc.settings.handle_max_message_bytes + 1) + data[20:]
    over_tcp = tcp_exchange(handle_port, too_long)
    assert parse(over_tcp)["rc"] == m.RC_PROTOCOL_ERROR and over_tcp.endswith(b"\0\0\0\0")
    over_udp = udp_message(udp_exchange(handle_port, too_long))
    assert parse(over_udp)["rc"] == m.RC_PROTOCOL_ERROR
    assert_signed(over_udp, key)
    plain = resolution("10.5555/signed.1", flags=PLAIN)
    unsigned = udp_message(udp_exchange(handle_port, plain[:16] + u32(1 << 30) + plain[20:]))
    assert parse(unsigned)["rc"] == m.RC_PROTOCOL_ERROR and unsigned.endswith(b"\0\0\0\0")
