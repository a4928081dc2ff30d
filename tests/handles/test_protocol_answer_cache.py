"""Resolution answers kept while the store is unchanged: never stale, bounded, public only, same octets."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from batchgen import Article

from agency.handles.editing import HandleEditor
from agency.handles.protocol import messages as m
from agency.handles.protocol.answer_cache import ENTRY_OVERHEAD, AnswerCache, change_marker
from agency.handles.protocol.assembly import answer_cache
from agency.handles.protocol.directory import StoreDirectory
from agency.handles.protocol.service import HandleService
from agency.handles.values import HandleValue
from hdl_wire import (  # noqa: F401
    handle_port, parse, request, resolution, tcp_exchange, text, u32, udp_exchange, udp_message,
)
from resolve_data import register

EXPIRY = slice(36, 40)  # the header's expiration time: the only octets that depend on the clock

# Another process deposits the DOI again (the handle store, as the deposit worker does) with a new URL.
DEPOSIT_ELSEWHERE = textwrap.dedent("""
    import sys
    from sqlalchemy import select
    from agency.accounts import registrant_by_id
    from agency.db import open_database
    from agency.deposit.extraction import DepositRecord
    from agency.handles.store import BatchRegistration
    from agency.models import Account

    db = open_database(sys.argv[1])
    with db.transaction() as session:
        registrant = registrant_by_id(session, session.scalar(select(Account.id).where(Account.login == "alice")))
        diagnostics = BatchRegistration(registrant, submission_id=0, ttl=86400).register(session, [DepositRecord(
            seq=1, doi=sys.argv[2], url=sys.argv[3], timestamp=sys.argv[4], content_type="journal_article")])
    db.engine.dispose()
    assert [d.status for d in diagnostics] == ["Success"], diagnostics
""")


def cached_service(svc, entries: int = 1000, max_bytes: int = 1 << 20) -> HandleService:
    marker = change_marker(svc.db.engine)
    if marker is None:
        pytest.skip("no answer cache on this database (PostgreSQL has no cheap change check)")
    return HandleService(svc.db, StoreDirectory(svc.db, svc.settings.handle_ttl), b"site",
                         answers=AnswerCache(marker, entries, max_bytes))


def ask(service: HandleService, data: bytes) -> bytes:
    """As the transports ask: the envelope's octets and the rest."""
    return service.answer_octets(data[:m.ENVELOPE_SIZE], data[m.ENVELOPE_SIZE:], "127.0.0.1")


def parsed_in_full(service: HandleService, data: bytes) -> bytes:
    return service.answer(m.Envelope.decode(data), data[m.ENVELOPE_SIZE:], "127.0.0.1")


class CountedMarker:
    """A change marker that counts how often it is read."""

    def __init__(self, marker) -> None:
        self.marker, self.reads = marker, 0

    def current(self) -> int:
        self.reads += 1
        return self.marker.current()


def urls(answer: bytes) -> list[bytes]:
    from agency.handles.values import Reader

    reader = Reader(parse(answer)["body"])
    reader.blob(4096)
    return [v.data for v in (HandleValue.read(reader) for _ in range(reader.i32())) if v.type == "URL"]


@pytest.fixture
def registered(client, svc, alice):
    register(client, svc, [Article("10.5555/Cache.1", url="https://example.org/first"),
                           Article("10.5555/cache.2", url="https://example.org/second")])


def test_a_deposit_by_another_process_is_seen_by_the_next_resolution(registered, svc, settings, handle_port):
    server_cache = svc.start_handle_server().service.answers
    assert (server_cache is not None) == (svc.db.dialect == "sqlite")  # the server as built: cache on SQLite only
    for _ in range(3):  # over both transports: the answer is kept after the first
        assert urls(tcp_exchange(handle_port, resolution("10.5555/cache.1"))) == [b"https://example.org/first"]
        answer = udp_message(udp_exchange(handle_port, resolution("10.5555/cache.1")))
        assert urls(answer) == [b"https://example.org/first"]
    if server_cache is not None:
        assert len(server_cache) == 1
    for n in range(2):  # twice: the second change comes after a resolution that saw the first
        url = f"https://example.org/moved-{n}"
        subprocess.run([sys.executable, "-c", DEPOSIT_ELSEWHERE, settings.effective_database_url, "10.5555/cache.1",
                        url, f"2099010100000{n}"], check=True, timeout=120)
        assert urls(udp_message(udp_exchange(handle_port, resolution("10.5555/cache.1")))) == [url.encode()]
        assert urls(tcp_exchange(handle_port, resolution("10.5555/cache.1"))) == [url.encode()]


def test_a_write_on_another_connection_of_this_process_is_seen(registered, svc):
    service = cached_service(svc)
    asked = resolution("10.5555/cache.2")
    assert urls(ask(service, asked)) == urls(ask(service, asked)) == [b"https://example.org/second"]
    assert len(service.answers) == 1
    with svc.db.transaction() as session:
        HandleEditor(session, "operator:test").modify("10.5555/cache.2", [HandleValue(1, "URL", b"https://x.org/2")])
    assert urls(ask(service, asked)) == [b"https://x.org/2"]
    with svc.db.transaction() as session:
        HandleEditor(session, "operator:test").delete("10.5555/cache.2")
    assert parse(ask(service, asked))["rc"] == m.RC_HANDLE_NOT_FOUND


def test_an_answer_read_across_a_commit_is_not_kept(registered, svc):
    service = cached_service(svc)
    cache = service.answers
    _nothing, version = cache.lookup(b"key")
    with svc.db.transaction() as session:  # a commit between the check and the read's end
        HandleEditor(session, "operator:test").modify("10.5555/cache.2", [HandleValue(1, "URL", b"https://x.org/3")])
    cache.lookup(b"other")  # any later check sees the commit
    cache.keep(b"key", version, (m.RC_SUCCESS, b"what was read before the commit"))
    assert cache.lookup(b"key")[0] is None and len(cache) == 0


def test_answers_are_the_octets_of_the_uncached_path(registered, svc):
    with svc.db.transaction() as session:
        HandleEditor(session, "operator:test").create("10.5555/cache.3", [
            HandleValue(1, "URL", b"https://example.org/3", 3600, timestamp=1_700_000_000),
            HandleValue(2, "EMAIL", b"hidden@example.org", public_read=False),
            HandleValue(7, "DESC", b"seven", 60)])
    uncached = HandleService(svc.db, StoreDirectory(svc.db, svc.settings.handle_ttl), b"site")
    service = cached_service(svc)
    requests = [resolution("10.5555/cache.1"), resolution("10.5555/CACHE.1", request_id=99, session=5),
                resolution("10.5555/cache.3", version=(2, 1), suggested=(2, 1)),
                resolution("10.5555/cache.3", version=(2, 5), suggested=(2, 11)),  # answered in 2.11
                resolution("10.5555/cache.3", version=(2, 11), suggested=(2, 3)),
                resolution("10.5555/cache.3", version=(2, 9), suggested=(0, 0)),  # no suggestion: its own
                resolution("10.5555/cache.3", version=(2, 20), suggested=(2, 30)),  # newer than ours: ours
                resolution("10.5555/cache.1", credential=b""),  # no credential field at all
                resolution("10.5555/cache.3", indexes=(7,)), resolution("10.5555/cache.3", types=("URL",)),
                resolution("10.5555/cache.3", types=("NOTHING",)), resolution("10.5555/none"),
                resolution("10.5555/cache.1", flags=0x19800000),  # with the request digest
                resolution("10.5555/cache.1", flags=0x19800000, request_id=12345)]
    for _ in range(2):  # read, then kept
        for data in requests:
            expected, got = bytearray(parsed_in_full(uncached, data)), bytearray(ask(service, data))
            expected[EXPIRY] = got[EXPIRY] = b"\0\0\0\0"
            assert got == expected, data
            assert parse(bytes(got))["request_id"] == parse(data)["request_id"]
    assert len(service.answers) == len({parse(data)["body"] for data in requests})  # one per body


def test_authenticated_requests_and_hidden_values_are_not_kept(registered, svc):
    with svc.db.transaction() as session:
        HandleEditor(session, "operator:test").create("10.5555/cache.4", [
            HandleValue(1, "URL", b"https://example.org/4"),
            HandleValue(2, "EMAIL", b"hidden@example.org", public_read=False)])
    service = cached_service(svc)
    signed = resolution("10.5555/cache.1", credential=text(b"\x00\x02" + b"credential"))
    for _ in range(2):
        assert parse(ask(service, signed))["rc"] == m.RC_SUCCESS
    assert len(service.answers) == 0
    answer = ask(service, resolution("10.5555/cache.4"))
    assert b"https://example.org/4" in answer and b"hidden@example.org" not in answer
    assert len(service.answers) == 1
    assert all(b"hidden@example.org" not in body for _code, body in service.answers._entries.values())


def test_the_cache_is_bounded_in_entries_and_octets(registered, svc):
    service = cached_service(svc, entries=5)
    for n in range(50):  # what clients ask, found or not, never grows it past its bound
        ask(service, resolution(f"10.5555/absent.{n}"))
        ask(service, resolution("10.5555/cache.1", indexes=(n,)))
    assert len(service.answers) == 5
    small = cached_service(svc, entries=1000, max_bytes=2000)
    for n in range(50):
        ask(small, resolution(f"10.5555/absent.{n}"))
        assert small.answers.bytes <= 2000
    assert 0 < len(small.answers) < 50
    latest = resolution("10.5555/absent.49")
    assert small.answers.lookup(latest[44:-4])[0] is not None  # the most recent stays, the oldest went


def test_the_cache_is_built_from_the_settings(svc):
    from dataclasses import replace

    cache = answer_cache(svc.settings, svc.db)
    if svc.db.dialect != "sqlite":
        assert cache is None  # PostgreSQL: every resolution reads the store
        return
    assert (cache.max_entries, cache.max_bytes) == (svc.settings.handle_answer_cache_entries,
                                                    svc.settings.handle_answer_cache_bytes)
    assert answer_cache(replace(svc.settings, handle_answer_cache_entries=0), svc.db) is None


def test_kept_entries_are_counted_by_size():
    class Fixed:
        def current(self) -> int:
            return 1

    cache = AnswerCache(Fixed(), max_entries=100, max_bytes=1000)
    _nothing, version = cache.lookup(b"a")
    cache.keep(b"a", version, (1, b"x" * 2000))  # larger than the whole cache: not kept
    assert len(cache) == 0 and cache.bytes == 0
    cache.keep(b"a", version, (1, b"x" * 100))
    cache.keep(b"a", version, (1, b"y" * 100))  # kept again: counted once
    assert len(cache) == 1 and cache.bytes == 1 + 100 + ENTRY_OVERHEAD
    assert cache.lookup(b"a")[0] == (1, b"y" * 100)


def test_the_change_check_holds_no_snapshot(registered, svc):
    service = cached_service(svc)
    before = service.answers.marker.current()
    with svc.db.transaction() as session:
        HandleEditor(session, "operator:test").modify("10.5555/cache.2", [HandleValue(1, "URL", b"https://x.org/4")])
    pooled = svc.db.engine.raw_connection()
    try:
        pooled.dbapi_connection.isolation_level = None
        busy, _log, _done = pooled.dbapi_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        pooled.close()
    assert busy == 0  # no read transaction left open between checks: the WAL can be emptied
    assert service.answers.marker.current() != before


# Requests the short way leaves to the full parse: each answered exactly as ``answer`` answers it.
UNUSUAL = {
    "signed": resolution("10.5555/cache.1", credential=text(b"\x00\x02" + b"credential")),
    "version 1.9": resolution("10.5555/cache.1", version=(1, 9)),
    "version 2.0": resolution("10.5555/cache.1", version=(2, 0)),
    "version 3.0": resolution("10.5555/cache.1", version=(3, 0)),
    "site information": request(m.OC_GET_SITEINFO, text("/") + u32(0) + u32(0)),
    "the site handle": resolution("/"),
    "no slash": resolution("10.5555"),
    "not served here": resolution("10.9999/cache.1"),
    "control character": resolution("10.5555/cache\x01"),
    "index list cut short": request(1, text("10.5555/cache.1") + u32(3) + u32(1)),
    "bad UTF-8": resolution(b"10.5555/\xff\xfe"),
    "compressed": bytes([2, 11, 0x80 | 2, 11]) + resolution("10.5555/cache.1")[4:],
    "a response": resolution("10.5555/cache.1")[:24] + u32(1) + resolution("10.5555/cache.1")[28:],
    "body length past the end": resolution("10.5555/cache.1")[:40] + u32(500) + resolution("10.5555/cache.1")[44:],
    "credential length past the end": resolution("10.5555/cache.1")[:-4] + u32(9),
    "envelope length too short": resolution("10.5555/cache.1")[:16] + u32(10) + resolution("10.5555/cache.1")[20:],
    "trailing octets": resolution("10.5555/cache.1")[:16] + u32(len(resolution("10.5555/cache.1")) - 16)
    + resolution("10.5555/cache.1")[20:] + b"\0\0\0\0",
}


@pytest.mark.parametrize("name", list(UNUSUAL))
def test_requests_off_the_short_way_are_answered_as_the_full_parse_answers_them(registered, svc, name):
    service = cached_service(svc)
    data = UNUSUAL[name]
    for _ in range(2):  # the second time, a kept answer would show
        expected, got = parsed_in_full(service, data), ask(service, data)
        if expected is None:
            assert got is None
            continue
        expected, got = bytearray(expected), bytearray(got)
        expected[EXPIRY] = got[EXPIRY] = b"\0\0\0\0"
        assert got == expected


def test_a_plain_resolution_is_answered_without_the_full_parse(registered, svc, monkeypatch):
    service = cached_service(svc)
    found, absent = resolution("10.5555/cache.1"), resolution("10.5555/absent")

    def refused(*_args, **_kwargs):
        raise AssertionError("a plain resolution went through the full parse")

    monkeypatch.setattr(m, "parse_message", refused)
    for _ in range(2):  # read and kept, then given again
        assert urls(ask(service, found)) == [b"https://example.org/first"]
        assert parse(ask(service, absent))["rc"] == m.RC_HANDLE_NOT_FOUND
    assert len(service.answers) == 2


def test_one_change_check_serves_what_was_received_before_it(registered, svc):
    service = cached_service(svc)
    cache = service.answers
    cache.marker = counted = CountedMarker(cache.marker)
    asked = resolution("10.5555/cache.2")
    checked = service.check_store()
    assert urls(service.answer_octets(asked[:20], asked[20:], "127.0.0.1", checked)) == [b"https://example.org/second"]
    assert urls(service.answer_octets(asked[:20], asked[20:], "127.0.0.1", checked)) == [b"https://example.org/second"]
    assert counted.reads == 1 and len(cache) == 1  # read and kept under one check
    with svc.db.transaction() as session:
        HandleEditor(session, "operator:test").modify("10.5555/cache.2", [HandleValue(1, "URL", b"https://x.org/5")])
    # Received before the commit, checked before it: the kept answer is still a right one for it.
    assert cache.get(parse(asked)["body"]) is not None
    assert urls(ask(service, asked)) == [b"https://x.org/5"]  # received after it: checked again, read again
    assert counted.reads == 2


def test_udp_datagrams_received_together_share_one_change_check(registered, svc):
    server = svc.start_handle_server()
    cache = server.service.answers
    if cache is None:
        pytest.skip("no answer cache on this database (PostgreSQL has no cheap change check)")
    cache.marker = counted = CountedMarker(cache.marker)
    import socket

    count = 20
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        with cache._lock:  # the UDP thread waits at its check while the rest arrive
            for n in range(count):
                sock.sendto(resolution("10.5555/cache.1", request_id=1000 + n), ("127.0.0.1", server.port))
            time.sleep(0.2)
        answers = [sock.recv(65535) for _ in range(count)]
    assert sorted(parse(a)["request_id"] for a in answers) == list(range(1000, 1000 + count))
    assert all(urls(a) == [b"https://example.org/first"] for a in answers)
    assert counted.reads <= 3  # one for the first datagram's batch, one for the rest (at most 32 at once)


def test_without_kept_answers_the_short_way_gives_the_octets_of_the_full_parse(registered, svc, monkeypatch):
    """PostgreSQL keeps no answers: plain resolutions still skip the full parse, and answer the same."""
    service = HandleService(svc.db, StoreDirectory(svc.db, svc.settings.handle_ttl), b"site")
    requests = [resolution("10.5555/cache.1"), resolution("10.5555/CACHE.1", request_id=99, session=5),
                resolution("10.5555/cache.2", version=(2, 5), suggested=(2, 11)), resolution("10.5555/none"),
                resolution("10.5555/cache.1", flags=0x19800000), resolution("10.5555/cache.1", types=("URL",)),
                *UNUSUAL.values()]
    expected = [parsed_in_full(service, data) for data in requests]
    parse_message = m.parse_message
    full_parses = []
    monkeypatch.setattr(m, "parse_message", lambda *a: full_parses.append(1) or parse_message(*a))
    for data, wanted in zip(requests, expected):
        got = ask(service, data)
        if wanted is None:
            assert got is None
            continue
        wanted, got = bytearray(wanted), bytearray(got)
        wanted[EXPIRY] = got[EXPIRY] = b"\0\0\0\0"
        assert got == wanted, data
    assert len(full_parses) <= len(UNUSUAL)  # the six plain ones took the short way
