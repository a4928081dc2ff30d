"""Concurrent writers can never let older data win: processes race over the same DOIs."""

from __future__ import annotations

import multiprocessing
import random

from sqlalchemy import select

from agency.accounts import registrant_by_id
from agency.db import open_database
from agency.deposit.extraction import DepositRecord
from agency.handles.store import BatchRegistration
from agency.models import Handle, HandleValue

DOIS = [f"10.5555/race.{i}" for i in range(300)]
ROUNDS = 12


def _race(url: str, account_id: int, parity: int, seed: int, queue) -> None:
    """Register every DOI ROUNDS times with random timestamps of one parity (so no two writers tie)."""
    db = open_database(url)
    rnd = random.Random(seed)
    attempts = []
    with db.sessions() as session:
        registrant = registrant_by_id(session, account_id)
    for round_no in range(ROUNDS):
        order = DOIS[:]
        rnd.shuffle(order)
        registration = BatchRegistration(registrant, submission_id=round_no, ttl=60)
        records = []
        for seq, doi in enumerate(order, 1):
            ts = rnd.randrange(1, 10**6) * 2 + parity
            records.append(DepositRecord(seq, doi, f"https://example.org/{parity}/{ts}", str(ts), "journal_article"))
            attempts.append((doi, ts))
        for start in range(0, len(records), 50):
            with db.transaction() as session:
                registration.register(session, records[start:start + 50])
    db.engine.dispose()
    queue.put(attempts)


def test_two_processes_racing_leave_the_newest_version_of_every_doi(svc, alice):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    url = svc.settings.effective_database_url
    procs = [ctx.Process(target=_race, args=(url, alice.id, parity, 1000 + parity, queue)) for parity in (0, 1)]
    for proc in procs:
        proc.start()
    attempts = [queue.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    newest: dict[str, int] = {}
    for doi, ts in attempts[0] + attempts[1]:
        newest[doi] = max(newest.get(doi, 0), ts)
    with svc.db.sessions() as session:
        versions = dict(session.execute(select(Handle.name, Handle.version)).all())
        urls = dict(session.execute(select(HandleValue.handle_key, HandleValue.data)
                                    .where(HandleValue.idx == 1)).all())
    assert len(versions) == len(DOIS)
    for doi in DOIS:
        ts = newest[doi]
        assert int(versions[doi]) == ts, doi
        assert bytes(urls[doi.upper()]).decode() == f"https://example.org/{ts % 2}/{ts}", doi
