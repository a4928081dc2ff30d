"""The pending-submission cap holds under 20 simultaneous deposits: counted and inserted under one lock."""

from __future__ import annotations

import io
import threading

import pytest
from sqlalchemy import func, select

from agency.deposit.intake import TooManyPending
from agency.models import Submission
from agency.services import build_agency
from batchgen import Article, deposit_xml
from sql_statements import sqlite_plan, statements_starting

CAP, DEPOSITS = 3, 20


def test_twenty_simultaneous_deposits_with_a_cap_of_three(settings, alice):
    agency = build_agency(settings.replace(max_pending_per_account=CAP))
    start = threading.Barrier(DEPOSITS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def deposit(n: int) -> None:
        data = deposit_xml([Article(f"10.5555/cap.{n}")], batch_id=f"cap-{n}")
        start.wait()
        try:
            _submission, verdict = agency.intake.receive(alice, io.BytesIO(data), f"cap-{n}.xml")
            outcome = "accepted" if verdict.accepted else "refused"
        except TooManyPending:
            outcome = "too many"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=deposit, args=(n,)) for n in range(DEPOSITS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert sorted(outcomes) == ["accepted"] * CAP + ["too many"] * (DEPOSITS - CAP)
        with agency.db.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Submission)) == CAP
        assert not any((settings.batch_dir / ".incoming").iterdir()), "refused uploads leave nothing behind"
    finally:
        agency.db.engine.dispose()


def test_the_account_lock_checks_no_referring_table(svc, alice):
    """The lock is a no-op update of a column no foreign key refers to: updating the key itself made SQLite
    look for the old key in every referring table, the whole handles table included (no index on
    handles.account_id), on every deposit."""
    if svc.db.dialect != "sqlite":
        pytest.skip("SQLite shows its foreign-key checks in the statement's plan; PostgreSQL runs them as triggers")
    with statements_starting(svc.db.engine, "UPDATE accounts") as statements:
        with svc.db.transaction() as session:
            svc.intake._lock_account(session, alice)
    assert len(statements) == 1
    plan = sqlite_plan(svc.db.engine, *statements[0])
    assert any("accounts" in step for step in plan), plan
    assert not any(table in step for step in plan for table in ("handles", "submissions", "prefixes")), plan
