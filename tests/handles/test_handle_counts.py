"""Each prefix's number of handles, kept by the triggers of migration 0016: equal to a count of the handles after
every kind of write, folded on PostgreSQL, and never a point where concurrent writers wait for each other."""

from __future__ import annotations

import json

import pytest
from batchgen import Article
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from agency.admin.prefixes import list_prefixes
from agency.handles.counts import FOLD_AT, fold_counts, prefix_count, prefix_counts
from agency.handles.store import rekey_stored_names
from agency.models import Handle, HandleCount
from agency.models.types import utcnow
from resolve_data import register
from test_handles_rest_writes import URL_VALUE, basic, writable  # noqa: F401 (the fixture)


def counted(session) -> dict[str, int]:
    """What the handles themselves say."""
    return dict(session.execute(select(Handle.prefix, func.count()).group_by(Handle.prefix)).all())


def count_rows(session, prefix: str) -> int:
    return session.scalar(select(func.count()).select_from(HandleCount).where(HandleCount.prefix == prefix))


def handle_row(name: str, account_id: int = 1) -> dict:
    now = utcnow()
    return {"key": name.lower(), "name": name, "prefix": name.split("/")[0], "version": "1".zfill(19),
            "revision": 1, "account_id": account_id, "submission_id": 0, "created_at": now, "updated_at": now}


def test_counts_follow_deposits_rest_writes_and_deletes(writable, client, svc, alice):  # noqa: F811
    register(client, svc, [Article(f"10.5555/Count.{n}", url=f"https://example.org/c{n}") for n in range(5)])
    register(client, svc, [Article("10.32013/Other.1", url="https://example.org/o")])
    register(client, svc, [Article(f"10.5555/Count.{n}", url=f"https://example.org/n{n}") for n in range(3)],
             timestamp="20250101000000")  # updates: no new handles
    for n in range(2):
        writable.put(f"/api/handles/10.5555/put.{n}", data=json.dumps([URL_VALUE]), headers=basic())
    assert writable.delete("/api/handles/10.5555/count.4", headers=basic()).status_code == 200
    with svc.db.sessions() as session:
        truth = counted(session)
        assert truth["10.5555"] == 5 + 2 - 1
        assert prefix_counts(session) == truth
        assert {p.prefix: p.dois for p in list_prefixes(session)} == {"10.5555": truth["10.5555"],
                                                                     "10.32013": 1}
    listing = writable.get("/api/handles?prefix=10.5555", headers=basic()).get_json()
    assert listing["totalCount"] == str(truth["10.5555"]) and len(listing["handles"]) == truth["10.5555"]


def test_counts_stay_equal_through_many_statements_deletes_and_a_rekey(svc, alice):
    with svc.db.transaction() as session:
        for n in range(FOLD_AT + 6):  # one statement each: PostgreSQL adds a row each
            session.execute(insert(Handle), [handle_row(f"10.5555/one.{n}")])
        session.execute(insert(Handle), [handle_row(f"10.6666/many.{n}") for n in range(40)])
        session.execute(delete(Handle).where(Handle.key.in_([f"10.5555/one.{n}" for n in range(10)])))
    with svc.db.transaction() as session:
        rows = count_rows(session, "10.5555")
        assert rows == (FOLD_AT + 7 if svc.db.dialect == "postgresql" else 1)
        assert prefix_count(session, "10.5555") == FOLD_AT - 4 == counted(session)["10.5555"]
        assert prefix_counts(session) == counted(session)
    with svc.db.transaction() as session:  # the reader folded the prefix's rows into one
        assert count_rows(session, "10.5555") == 1
        assert prefix_count(session, "10.5555") == FOLD_AT - 4
    with svc.db.transaction() as session:
        rekey_stored_names(session)  # inserts the new key, then deletes the old: nothing to move here
        session.execute(delete(Handle).where(Handle.prefix == "10.6666"))
    with svc.db.transaction() as session:
        assert prefix_counts(session) == counted(session) == {"10.5555": FOLD_AT - 4}
        assert prefix_count(session, "10.6666") == 0


def test_a_prefix_change_moves_the_count(svc, alice):
    with svc.db.transaction() as session:
        session.execute(insert(Handle), [handle_row(f"10.5555/m.{n}") for n in range(3)])
        session.execute(text("UPDATE handles SET prefix = '10.6666' WHERE key = '10.5555/m.0'"))
    with svc.db.sessions() as session:
        assert prefix_counts(session) == counted(session) == {"10.5555": 2, "10.6666": 1}


def test_the_scheduler_job_folds_every_prefix(svc, alice):
    from agency.runtime.scheduling import COUNT_FOLD_JOB, build_scheduler

    with svc.db.transaction() as session:
        for prefix in ("10.5555", "10.6666"):
            for n in range(3):
                session.execute(insert(Handle), [handle_row(f"{prefix}/f.{n}")])
        session.execute(delete(Handle).where(Handle.prefix == "10.6666"))
    folded = svc.fold_counts()
    with svc.db.sessions() as session:
        rows = dict(session.execute(select(HandleCount.prefix, func.count()).group_by(HandleCount.prefix)).all())
        if svc.db.dialect == "postgresql":
            assert folded == 1 and rows == {"10.5555": 1}  # an emptied prefix keeps no row
        else:
            assert folded == 0 and rows == {"10.5555": 1, "10.6666": 1}
        assert prefix_counts(session) == {"10.5555": 3}
    scheduler = build_scheduler(svc)
    assert scheduler.get_job(COUNT_FOLD_JOB).trigger.interval.total_seconds() == 300


@pytest.fixture
def postgresql(svc):
    if svc.db.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: its trigger keeps one row per prefix")
    return svc


def test_concurrent_writers_and_folding_never_wait_for_each_other(postgresql, alice):
    """Writers only add count rows, so two transactions adding handles to one prefix do not block on a shared
    counter, and a fold beside an open writer neither waits nor loses the writer's rows."""
    engine = postgresql.db.engine
    with engine.connect() as first, engine.connect() as second:
        first.execute(insert(Handle), [handle_row("10.5555/a.1")])  # open, not committed
        second.execute(text("SET lock_timeout = '2s'"))  # a wait would fail the test instead of hanging it
        second.execute(insert(Handle), [handle_row("10.5555/b.1"), handle_row("10.5555/b.2")])
        second.commit()
        second.execute(insert(Handle), [handle_row("10.5555/b.3")])
        second.commit()
        assert fold_counts(Session(bind=second)) == 1  # b.1 to b.3's two rows, beside first's open one
        second.commit()
        first.commit()
    with postgresql.db.sessions() as session:
        assert prefix_count(session, "10.5555") == 4 == counted(session)["10.5555"]
        assert count_rows(session, "10.5555") == 2  # the fold's row, and the first writer's


def test_two_folds_at_once_neither_waits_nor_loses_a_row(postgresql, alice):
    """A fold skips the rows another (still open) fold holds: the reader's fold never fails its request on a
    lock wait or a deadlock, and the skipped rows are folded later."""
    with postgresql.db.transaction() as session:
        for n in range(5):
            session.execute(insert(Handle), [handle_row(f"10.5555/s.{n}")])
    engine = postgresql.db.engine
    with engine.connect() as first, engine.connect() as second:
        assert fold_counts(Session(bind=first)) == 1  # holds the five rows, not committed
        second.execute(text("SET lock_timeout = '2s'"))
        assert fold_counts(Session(bind=second)) == 0  # skipped them
        second.commit()
        first.commit()
    with postgresql.db.sessions() as session:
        assert count_rows(session, "10.5555") == 1 and prefix_count(session, "10.5555") == 5
