"""Resolution answers kept while the store is unchanged: never stale, bounded, public only, same octets."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from batchgen import Article

from agency.handles.editing import HandleEditor
from agency.handles.protocol import messages as m
from agency.handles.protocol.answer_cache import ENTRY_OVERHEAD, AnswerCache, change_marker
from agency.handles.protocol.assembly import answer_cache
from agency.handles.protocol.directory import StoreDirectory
from agency.handles.protocol.service import HandleService
from agency.handles.values import HandleValue
from hdl_wire import handle_port, parse, resolution, tcp_exchange, text, udp_exchange, udp_message  # noqa: F401
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
    return service.answer(m.Envelope.decode(data), data[m.ENVELOPE_SIZE:], "127.0.0.1")


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
                resolution("10.5555/cache.3", indexes=(7,)), resolution("10.5555/cache.3", types=("URL",)),
                resolution("10.5555/cache.3", types=("NOTHING",)), resolution("10.5555/none"),
                resolution("10.5555/cache.1", flags=0x19800000),  # with the request digest
                resolution("10.5555/cache.1", flags=0x19800000, request_id=12345)]
    for _ in range(2):  # read, then kept
        for data in requests:
            expected, got = bytearray(ask(uncached, data)), bytearray(ask(service, data))
            expected[EXPIRY] = got[EXPIRY] = b"\0\0\0\0"
            assert got == expected, data
            assert parse(bytes(got))["request_id"] == parse(data)["request_id"]
    assert len(service.answers) == len({data[20 + 24:-4] for data in requests})  # one per body


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
