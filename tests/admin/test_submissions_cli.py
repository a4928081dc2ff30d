"""`agency submissions list|retry`: the operator sees failed submissions with their reason and retries them."""

from __future__ import annotations

import io

import pytest

from agency.admin.audit import events
from agency.cli import main
from agency.models import Submission
from batchgen import Article, deposit_xml


@pytest.fixture
def environment(svc, monkeypatch):
    s = svc.settings
    for name, value in {"DATA_DIR": s.data_dir, "BATCH_DIR": s.batch_dir, "DATABASE_URL": s.database_url,
                        "RUN_WORKER": "0", "RUN_SCHEDULER": "0", "PASSWORD_TIME_COST": "1",
                        "OPERATOR": "ops-on-call"}.items():
        monkeypatch.setenv(f"AGENCY_{name}", str(value))
    return svc


def test_failed_submissions_are_listed_with_their_reason_and_retried(environment, alice, capsys):
    svc = environment
    svc.worker.settings = svc.settings.replace(worker_max_attempts=1)
    submission, verdict = svc.intake.receive(alice, io.BytesIO(deposit_xml([Article("10.5555/cli.1")])), "cli.xml")
    batch = svc.settings.batch_dir / submission.storage_path / "batch.xml"
    kept = batch.read_bytes()
    batch.unlink()
    svc.worker.runners["deposit"]._primed.clear()  # as if another process had accepted it
    svc.worker.run_until_idle()

    assert main(["submissions", "list"]) == 0
    out = capsys.readouterr().out
    assert f"{submission.id}" in out and "failed" in out and "missing" in out and "alice" in out
    assert main(["submissions", "list", "--status", "completed"]) == 0
    assert "no completed submissions" in capsys.readouterr().out

    batch.write_bytes(kept)
    assert main(["submissions", "retry", str(submission.id), "--reason", "restored"]) == 0
    assert "queued again" in capsys.readouterr().out
    assert main(["submissions", "retry", str(submission.id)]) == 2  # not failed any more
    assert "not failed" in capsys.readouterr().err
    svc.worker.run_until_idle()
    with svc.db.sessions() as session:
        assert session.get(Submission, submission.id).status == "completed"
        (event,) = events(session, subject=f"submission:{submission.id}")
        assert (event.actor, event.reason) == ("operator:ops-on-call", "restored")
