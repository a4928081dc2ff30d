"""The worker's claim finds the few unfinished submissions among many completed ones through an index."""

from __future__ import annotations

from sqlalchemy import insert, text

from agency.models import Submission
from agency.models.types import utcnow
from conftest import ALICE, add_account
from sql_statements import sqlite_plan, statements_starting


def test_claim_takes_the_queued_submission_through_the_unfinished_index(svc):
    alice = add_account(svc, *ALICE)
    now = utcnow()
    common = {"account_id": alice.id, "kind": "deposit", "operation": "doMDUpload", "file_name": "b.xml",
              "storage_path": "x", "byte_size": 0, "sha256": "", "received_at": now, "record_count": 0,
              "success_count": 0, "warning_count": 0, "failure_count": 0, "records_done": 0, "attempts": 0}
    with svc.db.transaction() as session:
        session.execute(insert(Submission), [{**common, "status": "completed", "completed_at": now,
                                              "last_slice_at": now} for _ in range(2000)])
        session.execute(insert(Submission), [{**common, "status": "queued"}])
        queued = session.scalar(text("SELECT max(id) FROM submissions"))
        session.execute(text("ANALYZE"))  # statistics that say: one status value, everywhere
    with statements_starting(svc.db.engine, "SELECT submissions.id, submissions.kind") as statements:
        assert svc.worker.claim() == (queued, "deposit")
        assert svc.worker.claim() is None  # leased now: nothing else to take
    assert statements
    if svc.db.dialect == "sqlite":
        plan = sqlite_plan(svc.db.engine, *statements[0])
        assert any("ix_submissions_unfinished" in step for step in plan), plan
        assert not any(step.startswith("SCAN submissions") for step in plan), plan
