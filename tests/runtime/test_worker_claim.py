"""The worker's claim finds the few unfinished submissions among many completed ones through an index."""

from __future__ import annotations

from sqlalchemy import event, insert, text

from agency.models import Submission
from agency.models.types import utcnow
from conftest import ALICE, add_account


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
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _executemany):
        if statement.startswith("SELECT submissions.id, submissions.kind"):
            statements.append((statement, parameters))

    event.listen(svc.db.engine, "before_cursor_execute", capture)
    try:
        assert svc.worker.claim() == (queued, "deposit")
        assert svc.worker.claim() is None  # leased now: nothing else to take
    finally:
        event.remove(svc.db.engine, "before_cursor_execute", capture)
    assert statements
    if svc.db.dialect == "sqlite":
        with svc.db.engine.connect() as conn:
            plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statements[0][0],
                                                           statements[0][1])]
        assert any("ix_submissions_unfinished" in step for step in plan), plan
        assert not any(step.startswith("SCAN submissions") for step in plan), plan
