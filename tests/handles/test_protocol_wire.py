"""The handle server on the wire: RFC 3652 layout, versions, and every kind of bad input, over TCP and UDP."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest
from batchgen import Article

from agency.handles.protocol.authentication import answer_matches
from agency.handles.values import HandleValue
from hdl_wire import (  # noqa: F401
    handle_port, make_prefix_record, parse, request, resolution, tcp_exchange, text, u32, udp_exchange, udp_message,
)
from resolve_data import register

RC_SUCCESS, RC_PROTOCOL_ERROR, RC_OPERATION_DENIED, RC_INVALID_HANDLE = 1, 4, 5, 102
RC_HANDLE_NOT_FOUND, RC_AUTHEN_NEEDED, RC_AUTHEN_FAILED, RC_AUTHEN_TIMEOUT = 100, 402, 403, 405


@pytest.fixture
def served(client, svc, alice, handle_port):
    register(client, svc, [Article("10.5555/Abc.1", url="https://example.org/abc")])
    return handle_port


def values_of(body: bytes) -> list[HandleValue]:
    from agency.handles.values import Reader

    reader = Reader(body)
    reader.blob(4096)
    return [HandleValue.read(reader) for _ in range(reader.i32())]


def test_resolution_layout_and_version_negotiation(served):
    answer = parse(tcp_exchange(served, resolution("10.5555/abc.1", version=(2, 3), suggested=(2, 11),
                                                   request_id=4242)))
    assert answer["rc"] == RC_SUCCESS and answer["op"] == 1 and answer["request_id"] == 4242
    assert answer["version"] == (2, 11)  # the client suggested 2.11: the highest both speak
    assert [v.index for v in values_of(answer["body"])] == [1, 100]
    old = parse(tcp_exchange(served, resolution("10.5555/abc.1", version=(2, 1), suggested=(2, 1))))
    assert old["rc"] == RC_SUCCESS and old["version"] == (2, 1)
    newer = parse(tcp_exchange(served, resolution("10.5555/abc.1", version=(2, 11), suggested=(2, 40))))
    assert newer["version"] == (2, 11)  # capped at ours


def test_request_digest_when_asked(served):
    data = resolution("10.5555/abc.1", flags=0x19800000)
    answer = parse(tcp_exchange(served, data))
    import hashlib

    assert answer["flags"] & 0x00800000
    header_and_body = data[20:-4]
    assert answer["body"][:21] == b"\x02" + hashlib.sha1(header_and_body).digest()


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 1), (9, 9)])
def test_wrong_protocol_versions(served, version):
    answer = parse(tcp_exchange(served, resolution("10.5555/abc.1", version=version, suggested=version)))
    assert answer["rc"] == RC_PROTOCOL_ERROR
    assert b"2.1 to 2.11" in answer["body"]


def test_unknown_operation_codes(served):
    for op in (0, 3, 99, 999, 0xFFFFFFFF):
        answer = parse(tcp_exchange(served, request(op, text("10.5555/abc.1"))))
        assert answer["rc"] == RC_OPERATION_DENIED, op


def _bad_bodies():
    handle = text("10.5555/abc.1")
    return {
        "body length past the end": request(1, handle + u32(0) + u32(0))[:44 - 4]
        + struct.pack(">I", 5000) + (handle + u32(0) + u32(0) + u32(0)),
        "handle length past the end": request(1, u32(500) + b"10.5555/abc.1" + u32(0) + u32(0)),
        "negative handle length": request(1, u32(0xFFFFFFF0) + u32(0) + u32(0)),
        "huge index count": request(1, handle + u32(0x7FFFFFFF)),
        "negative index count": request(1, handle + u32(0xFFFFFFFF) + u32(0)),
        "huge type count": request(1, handle + u32(0) + u32(0x10000000)),
        "type cut short": request(1, handle + u32(0) + u32(1) + u32(40) + b"URL"),
        "credential length past the end": request(1, handle + u32(0) + u32(0), credential=u32(900)),
    }


@pytest.mark.parametrize("case", list(_bad_bodies()))
def test_malformed_bodies_get_a_protocol_error(served, case):
    data = _bad_bodies()[case]
    answer = parse(tcp_exchange(served, data))
    assert answer["rc"] in (RC_PROTOCOL_ERROR, RC_INVALID_HANDLE), (case, answer)
    udp = parse(udp_message(udp_exchange(served, data)))
    assert udp["rc"] == answer["rc"], case
    # ... and the server is still there
    assert parse(tcp_exchange(served, resolution("10.5555/abc.1")))["rc"] == RC_SUCCESS


@pytest.mark.parametrize("handle", [b"10.5555/a\x00b", b"10.5555/line\nbreak", b"10.5555/\xff\xfe",
                                    b"10.5555/" + b"x" * 2100, b"10.5555/\xc3"])
def test_bad_handles(served, handle):
    answer = parse(tcp_exchange(served, resolution(handle)))
    assert answer["rc"] == RC_INVALID_HANDLE, answer


def test_truncated_and_oversized_messages(served, svc):
    # A truncated envelope over UDP is dropped (nothing to answer to); the server keeps answering.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        sock.sendto(b"\x02\x0b\x02", ("127.0.0.1", served))
        with pytest.raises(socket.timeout):
            sock.recv(1000)
    # A message shorter than its header, and one announcing more than the limit, are refused.
    short = request(1, b"")[:20 - 4] + u32(10) + b"\0" * 10
    assert parse(tcp_exchange(served, short))["rc"] == RC_PROTOCOL_ERROR
    huge = resolution("10.5555/abc.1")[:16] + u32(svc.settings.handle_max_message_bytes + 1)
    with socket.create_connection(("127.0.0.1", served), timeout=5) as sock:
        sock.sendall(huge)
        reply = sock.recv(1000)
        assert parse(reply)["rc"] == RC_PROTOCOL_ERROR
        assert sock.recv(1000) == b""  # and the connection is closed without reading the rest
    # A TCP connection that ends mid-message costs nothing and the server goes on.
    with socket.create_connection(("127.0.0.1", served), timeout=5) as sock:
        sock.sendall(resolution("10.5555/abc.1")[:30])
    assert parse(tcp_exchange(served, resolution("10.5555/abc.1")))["rc"] == RC_SUCCESS


def test_slow_clients_hold_no_worker(served, svc):
    """More silent or dribbling connections than there are workers; a normal client is still answered."""
    slow = []
    for _ in range(svc.settings.handle_workers * 3):
        sock = socket.create_connection(("127.0.0.1", served), timeout=5)
        sock.sendall(resolution("10.5555/abc.1")[:25])  # a message begun and never finished
        slow.append(sock)
    try:
        started = time.monotonic()
        assert parse(tcp_exchange(served, resolution("10.5555/abc.1")))["rc"] == RC_SUCCESS
        assert time.monotonic() - started < 2.0
    finally:
        for sock in slow:
            sock.close()


def test_multi_packet_udp_answer(client, svc, alice, handle_port):
    make_prefix_record(svc)
    from agency.handles.editing import HandleEditor

    many = [HandleValue(i, "URL", f"https://example.org/mirror/{i}".encode() * 3) for i in range(1, 40)]
    with svc.db.transaction() as session:
        HandleEditor(session, "operator:test").create("10.5555/big", many)
    packets = udp_exchange(handle_port, resolution("10.5555/big"))
    assert len(packets) > 1 and all(len(p) <= 512 for p in packets)
    assert all(p[2] & 0x20 for p in packets)  # TC: a split message
    answer = parse(udp_message(packets))
    assert answer["rc"] == RC_SUCCESS
    assert [v.data for v in values_of(answer["body"])][:39] == [v.data for v in many]


def test_udp_flood_is_survived(served):
    """A bounded burst of datagrams (valid, garbage, truncated) on loopback; afterwards the server answers."""
    good = resolution("10.5555/abc.1")
    junk = [good, b"\x00" * 20, b"\x02", good[:40], request(1, u32(0x7FFFFFFF)), b"\xff" * 512]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sent = 0
        for n in range(5000):
            try:
                sock.sendto(junk[n % len(junk)], ("127.0.0.1", served))
                sent += 1
            except BlockingIOError:
                time.sleep(0.001)
    assert sent > 1000
    time.sleep(0.5)
    assert parse(udp_message(udp_exchange(served, good)))["rc"] == RC_SUCCESS
    assert parse(tcp_exchange(served, good))["rc"] == RC_SUCCESS


def _admin_request(handle: str = "10.5555/new", request_id: int = 9, **kw) -> bytes:
    value = struct.pack(">iIBiB", 1, 0, 0, 86400, 0x0E) + text("URL") + text("https://example.org/n") + u32(0)
    return request(100, text(handle) + u32(1) + value, request_id=request_id, **kw)


def _answer(session: int, body: bytes, request_id: int = 10) -> bytes:
    return request(200, body, session=session, request_id=request_id)


def test_challenge_and_answers(client, svc, alice, handle_port):
    make_prefix_record(svc)
    data = _admin_request()
    challenge = parse(tcp_exchange(handle_port, data))
    assert challenge["rc"] == RC_AUTHEN_NEEDED and challenge["session"] != 0 and challenge["op"] == 100
    import hashlib

    digest = hashlib.sha1(data[20:-4]).digest()
    assert challenge["flags"] & 0x00800000 and challenge["body"][:21] == b"\x02" + digest
    nonce = challenge["body"][25:]
    key = hashlib.sha1(b"prefix-secret-10.5555").hexdigest().encode()
    mac = b"\x02" + hashlib.sha1(key + nonce + digest + key).digest()
    answer_body = text("HS_SECKEY") + text("0.NA/10.5555") + u32(300) + text(mac)
    done = parse(tcp_exchange(handle_port, _answer(challenge["session"], answer_body)))
    assert done["rc"] == RC_SUCCESS and done["op"] == 100 and done["request_id"] == 10
    # The same answer again (a replay): the challenge was used up.
    again = parse(tcp_exchange(handle_port, _answer(challenge["session"], answer_body)))
    assert again["rc"] == RC_AUTHEN_TIMEOUT
    # An answer for a session nobody opened.
    assert parse(tcp_exchange(handle_port, _answer(12345, answer_body)))["rc"] == RC_AUTHEN_TIMEOUT
    # A malformed answer body.
    challenge = parse(tcp_exchange(handle_port, _admin_request("10.5555/other")))
    broken = parse(tcp_exchange(handle_port, _answer(challenge["session"], text("HS_SECKEY") + u32(9999))))
    assert broken["rc"] in (RC_PROTOCOL_ERROR, RC_INVALID_HANDLE)


def test_wrong_secrets_are_throttled(client, svc, alice, handle_port):
    make_prefix_record(svc)
    allowed = svc.settings.handle_auth_failures
    codes, messages = [], []
    for n in range(allowed + 2):
        challenge = parse(tcp_exchange(handle_port, _admin_request(f"10.5555/t{n}")))
        body = text("HS_SECKEY") + text("0.NA/10.5555") + u32(300) + text(b"\x02" + b"\0" * 20)
        answer = parse(tcp_exchange(handle_port, _answer(challenge["session"], body)))
        codes.append(answer["rc"])
        messages.append(answer["body"])
    assert codes == [RC_AUTHEN_FAILED] * (allowed + 2)
    assert b"too many failed authentications" in messages[-1]
    assert b"too many" not in messages[0]


def test_admin_request_for_a_prefix_not_served_is_not_challenged(served):
    answer = parse(tcp_exchange(served, _admin_request("10.9999/x")))
    assert answer["rc"] == 301


def test_answer_schemes_and_limits():
    import hashlib
    import hmac as hmac_module

    key, nonce, digest = b"k" * 40, b"n" * 16, b"d" * 20
    assert answer_matches(key, nonce, digest, b"\x02" + hashlib.sha1(key + nonce + digest + key).digest())
    salt = b"s" * 16
    derived = hashlib.pbkdf2_hmac("sha1", key, salt, 10000, 20)
    mac = hmac_module.new(derived, nonce + digest, hashlib.sha1).digest()
    good = b"\x22" + text(salt) + u32(10000) + u32(160) + text(mac)
    assert answer_matches(key, nonce, digest, good)
    assert not answer_matches(b"other", nonce, digest, good)
    from agency.handles.protocol.authentication import AnswerError

    with pytest.raises(AnswerError):  # a billion iterations would cost us minutes
        answer_matches(key, nonce, digest, b"\x22" + text(salt) + u32(10 ** 9) + u32(160) + text(mac))
    with pytest.raises(AnswerError):
        answer_matches(key, nonce, digest, b"\x99abc")


def _ask_as(service, data: bytes, address: str) -> dict:
    return parse(service.answer_octets(data[:20], data[20:], address))


def _right_answer(data: bytes, challenge: dict) -> bytes:
    import hashlib

    digest, nonce = hashlib.sha1(data[20:-4]).digest(), challenge["body"][25:]
    key = hashlib.sha1(b"prefix-secret-10.5555").hexdigest().encode()
    return text("HS_SECKEY") + text("0.NA/10.5555") + u32(300) + text(
        b"\x02" + hashlib.sha1(key + nonce + digest + key).digest())


def _answer_as(service, address: str, body_for, n: int) -> dict:
    data = _admin_request(f"10.5555/g{n}")
    challenge = _ask_as(service, data, address)
    return _ask_as(service, _answer(challenge["session"], body_for(data, challenge)), address)


def test_guessing_at_one_key_from_many_addresses_is_refused(client, svc, alice, handle_port):
    make_prefix_record(svc)
    service = svc.start_handle_server().service
    per_key = svc.settings.handle_auth_failures_per_key
    assert per_key > svc.settings.handle_auth_failures  # so the per-address limit alone would not stop this
    wrong = lambda _data, _challenge: text("HS_SECKEY") + text("0.NA/10.5555") + u32(300) + text(  # noqa: E731
        b"\x02" + b"\0" * 20)
    assert _answer_as(service, "192.0.2.200", _right_answer, 0)["rc"] == RC_SUCCESS  # the key holder, earlier
    for n in range(per_key):  # one wrong guess from each of many addresses
        assert b"too many" not in _answer_as(service, f"198.51.100.{n}", wrong, n + 1)["body"]
    refused = _answer_as(service, "203.0.113.1", _right_answer, 100)  # a new address, even with the right secret
    assert refused["rc"] == RC_AUTHEN_FAILED and b"too many failed authentications for this key" in refused["body"]
    # The key holder's own address, where it succeeded before, is not locked out by others' guessing.
    assert _answer_as(service, "192.0.2.200", _right_answer, 101)["rc"] == RC_SUCCESS


def test_one_address_trying_many_keys_is_refused(client, svc, alice, handle_port):
    make_prefix_record(svc)
    service = svc.start_handle_server().service
    per_address = svc.settings.handle_auth_failures

    def other_key(n):
        return lambda _data, _challenge: text("HS_SECKEY") + text("0.NA/10.5555") + u32(1000 + n) + text(
            b"\x02" + b"\0" * 20)

    bodies = [_answer_as(service, "198.51.100.77", other_key(n), n)["body"] for n in range(per_address + 1)]
    assert all(b"too many" not in body for body in bodies[:per_address])
    assert b"too many failed authentications" in bodies[-1]
    assert _answer_as(service, "198.51.100.78", _right_answer, 99)["rc"] == RC_SUCCESS  # others are not affected


def test_the_rest_api_and_the_protocol_count_wrong_keys_together(client, svc, alice):
    import base64
    import json

    make_prefix_record(svc)
    service = svc.start_handle_server().service  # in the web service's process, as under `agency serve`
    wrong = {"Authorization": "Basic " + base64.b64encode(b"300%3A0.NA%2F10.5555:not-it").decode(),
             "Content-Type": "application/json"}
    for _ in range(svc.settings.handle_auth_failures):
        response = client.put("/api/handles/10.5555/rest", data=json.dumps([{"index": 1, "type": "URL",
                                                                              "data": "https://example.org/"}]),
                              headers=wrong, base_url="https://localhost")
        assert response.status_code == 403
    refused = _answer_as(service, "127.0.0.1", _right_answer, 1)  # the test client's address, over the protocol
    assert refused["rc"] == RC_AUTHEN_FAILED and b"too many failed authentications" in refused["body"]


def test_concurrent_clients(served):
    results = []

    def worker():
        for _ in range(20):
            results.append(parse(tcp_exchange(served, resolution("10.5555/abc.1")))["rc"])

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [RC_SUCCESS] * 120


def test_fast_record_read_matches_the_store(client, svc, alice):
    """Resolution's one-query read gives exactly what store.handle_values gives (timestamps included)."""
    from agency.handles.editing import HandleEditor
    from agency.handles.protocol.directory import StoreDirectory
    from agency.handles.store import handle_values
    from agency.handles.values import Reference

    register(client, svc, [Article("10.5555/Fast.1", url="https://example.org/f")])
    make_prefix_record(svc)
    with svc.db.transaction() as session:
        HandleEditor(session, "operator:test").create("10.5555/refs", [
            HandleValue(1, "URL", b"https://example.org/r", references=(Reference("10.5555/Fast.1", 1),)),
            HandleValue(7, "SECRET", b"s", public_read=False)])
    directory = StoreDirectory(svc.db, svc.settings.handle_ttl)
    for handle in ("10.5555/fast.1", "10.5555/REFS", "0.NA/10.5555", "0.NA/10.32013"):
        with svc.db.sessions() as session:
            slow = handle_values(session, handle) or directory.values_in(session, handle)
        assert directory.values(handle) == slow, handle
    assert directory.values("10.5555/none") is None


def test_split_udp_request_is_reassembled(served):
    """A request longer than one datagram arrives in numbered packets (TC set); the server answers the whole."""
    whole = resolution("10.5555/" + "long-suffix-" * 90)  # about 1,100 octets
    proper = whole[20:]
    packets = []
    for n, start in enumerate(range(0, len(proper), 492)):
        envelope = struct.pack(">BBBBIIII", 2, 11, 0x20 | 2, 11, 0, 77, n, len(proper))
        packets.append(envelope + proper[start:start + 492])
    assert len(packets) >= 3
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        for packet in reversed(packets):  # any order
            sock.sendto(packet, ("127.0.0.1", served))
        answer = parse(sock.recv(65535))
    assert answer["request_id"] == 77 and answer["rc"] == RC_HANDLE_NOT_FOUND


def test_challenges_expire_and_are_bounded(svc):
    from agency.handles.protocol import messages as m
    from agency.handles.protocol.authentication import ChallengeLimit, Challenges

    data = _admin_request()
    envelope = m.Envelope.decode(data)
    request = m.parse_message(envelope, data[20:], 1 << 20)
    expired = Challenges(svc.db, 1 << 20, lifetime=-1.0)
    assert expired.take(expired.issue(request).session_id) is None
    bounded = Challenges(svc.db, 1 << 20, capacity=2)
    first = bounded.issue(request)
    bounded.issue(request)
    with pytest.raises(ChallengeLimit):
        bounded.issue(request)
    taken = bounded.take(first.session_id)
    assert taken.nonce == first.nonce and taken.request.payload == request.payload
    assert bounded.take(first.session_id) is None  # single use


@pytest.mark.parametrize("host, clients", [("::1", ["::1"]), ("::", ["::1", "127.0.0.1"])])
def test_ipv6_listening_over_tcp_and_udp(client, svc, alice, settings, host, clients):
    """``AGENCY_HANDLE_HOST=::1`` listens on IPv6; ``::`` takes both families on one socket each."""
    import socket as sockets

    if not sockets.has_ipv6:
        pytest.skip("this system has no IPv6")
    from agency.handles.protocol.assembly import build_handle_server

    register(client, svc, [Article("10.5555/Six.1", url="https://example.org/six")])
    server = build_handle_server(settings.replace(handle_host=host), svc.db, port=0).start()
    try:
        for address in clients:
            over_tcp = parse(tcp_exchange(server.port, resolution("10.5555/six.1"), host=address))
            over_udp = parse(udp_message(udp_exchange(server.port, resolution("10.5555/SIX.1"), host=address)))
            assert over_tcp["rc"] == over_udp["rc"] == RC_SUCCESS, address
            assert [v.index for v in values_of(over_udp["body"])] == [1, 100]
    finally:
        server.stop()


def _blocking_admin(monkeypatch, server) -> tuple[threading.Event, list]:
    """Make create-handle requests wait until the returned event is set; the list counts those that arrived."""
    release, arrived = threading.Event(), []
    real = server.service.answer

    def answer(envelope, payload, peer):
        if int.from_bytes(payload[:4], "big") == 100:
            arrived.append(envelope.request_id)
            release.wait(20)
        return real(envelope, payload, peer)
    monkeypatch.setattr(server.service, "answer", answer)
    return release, arrived


def _until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the server never got there"
        time.sleep(0.01)


def test_a_slow_udp_request_holds_no_resolution_up(client, svc, alice, monkeypatch):
    """One UDP thread answers resolutions itself; an administration request waits for a worker thread, so
    while one is stuck (a database lock, say) resolutions on the same socket are still answered."""
    from dataclasses import replace

    from agency.handles.protocol.assembly import build_handle_server

    register(client, svc, [Article("10.5555/Abc.1", url="https://example.org/abc")])
    server = build_handle_server(replace(svc.settings, handle_udp_threads=1), svc.db, port=0).start()
    release, arrived = _blocking_admin(monkeypatch, server)
    try:
        assert server.limits.udp_threads == 1
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(_admin_request(), ("127.0.0.1", server.port))
            _until(lambda: arrived)
            assert parse(udp_message(udp_exchange(server.port, resolution("10.5555/abc.1"))))["rc"] == RC_SUCCESS
            assert not release.is_set() and arrived == [9]  # answered while the administration request waited
    finally:
        release.set()
        server.stop()


def test_udp_requests_waiting_for_a_worker_are_bounded(client, svc, alice, monkeypatch):
    """With every worker stuck and the waiting room full, further administration datagrams are dropped (UDP
    clients retry), not queued without end; resolution goes on, and so does everything once they finish."""
    register(client, svc, [Article("10.5555/Abc.1", url="https://example.org/abc")])
    svc.settings = svc.settings.replace(handle_workers=2, handle_max_udp_waiting=3, handle_udp_threads=1)  # in order
    server = svc.start_handle_server(port=0)
    release, arrived = _blocking_admin(monkeypatch, server)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for request_id in range(100, 120):
                sock.sendto(_admin_request(request_id=request_id), ("127.0.0.1", server.port))
            _until(lambda: len(arrived) == 2)  # the two workers are stuck
            assert parse(udp_message(udp_exchange(server.port, resolution("10.5555/abc.1"))))["rc"] == RC_SUCCESS
            release.set()
            _until(lambda: len(arrived) == 3)  # the third one admitted waited; the other 17 were dropped
            time.sleep(0.3)
            assert arrived == [100, 101, 102]
            sock.sendto(_admin_request(request_id=130), ("127.0.0.1", server.port))
            _until(lambda: arrived[-1] == 130)  # room again
    finally:
        release.set()
        svc.stop_background()


def test_tcp_resolution_is_answered_while_every_worker_is_busy(client, svc, alice, monkeypatch):
    """Over TCP too, a resolution is answered by the event loop itself, not queued behind administration
    requests that hold every worker thread (here both, stuck)."""
    register(client, svc, [Article("10.5555/Abc.1", url="https://example.org/abc")])
    svc.settings = svc.settings.replace(handle_workers=2)
    server = svc.start_handle_server(port=0)
    release, arrived = _blocking_admin(monkeypatch, server)
    stuck = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
    try:
        for request_id, sock in enumerate(stuck, start=200):
            sock.sendall(_admin_request(request_id=request_id))
        _until(lambda: len(arrived) == 2)
        assert parse(tcp_exchange(server.port, resolution("10.5555/abc.1")))["rc"] == RC_SUCCESS
        assert not release.is_set()
    finally:
        release.set()
        for sock in stuck:
            sock.close()
        svc.stop_background()


def test_a_prefix_given_a_moment_ago_is_served_at_once(served, svc):
    from agency.admin.audit import Actor
    from agency.admin.prefixes import add

    before = parse(udp_message(udp_exchange(served, resolution("10.7777/new.1"))))
    assert before["rc"] == 301 and b"10.7777 is not served here" in before["body"]
    with svc.db.transaction() as session:
        add(session, Actor.operator("ops"), "alice", "10.7777")
    for exchange in (lambda data: udp_message(udp_exchange(served, data)), lambda data: tcp_exchange(served, data)):
        assert parse(exchange(resolution("10.7777/new.1")))["rc"] == RC_HANDLE_NOT_FOUND  # served, no such handle


def test_a_prefix_another_agency_now_serves_is_not_answered_for(served, svc, monkeypatch):
    from agency.admin.audit import Actor
    from agency.admin.prefixes import mark_served_elsewhere
    from agency.handles.protocol import directory

    assert parse(udp_message(udp_exchange(served, resolution("10.5555/abc.1"))))["rc"] == RC_SUCCESS
    monkeypatch.setattr(directory, "PREFIX_CACHE_SECONDS", 0.0)  # no wait for the list to be read again
    with svc.db.transaction() as session:
        mark_served_elsewhere(session, Actor.operator("ops"), "10.5555", "Another RA's handle service")
    for exchange in (lambda data: udp_message(udp_exchange(served, data)), lambda data: tcp_exchange(served, data)):
        assert parse(exchange(resolution("10.5555/abc.1")))["rc"] == 301  # the client goes where the GHR says


def test_a_certified_request_being_signed_holds_no_resolution_up(client, svc, alice, monkeypatch):
    """A signature costs some 30 resolutions' time: certified requests wait for a worker thread, so the UDP
    thread and the TCP event loop go on answering plain resolutions meanwhile."""
    register(client, svc, [Article("10.5555/Abc.1", url="https://example.org/abc")])
    server = svc.start_handle_server(port=0)
    release, signing = threading.Event(), []
    real = server.service.signer.credential

    def slow_credential(signed: bytes) -> bytes:
        signing.append(1)
        release.wait(20)
        return real(signed)
    monkeypatch.setattr(server.service.signer, "credential", slow_credential)
    certified = resolution("10.5555/abc.1", flags=0x19000000 | 0x40000000, request_id=77)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(certified, ("127.0.0.1", server.port))
            _until(lambda: signing)
            assert parse(udp_message(udp_exchange(server.port, resolution("10.5555/abc.1"))))["rc"] == RC_SUCCESS
            assert parse(tcp_exchange(server.port, resolution("10.5555/abc.1")))["rc"] == RC_SUCCESS
            assert not release.is_set()
            release.set()
            sock.settimeout(10)
            answer = parse(sock.recv(65535))
            assert answer["request_id"] == 77 and answer["rc"] == RC_SUCCESS  # answered once signed
    finally:
        release.set()
        svc.stop_background()
