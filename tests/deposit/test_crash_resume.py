"""kill -9 the worker in the middle of a 10,000-record batch: a restart finishes it exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from agency.models import Handle, HandleValue, RecordResult, Submission
from agency.services import build_agency
from batchgen import Article, deposit_xml
from conftest import ALICE, add_account

RECORDS = 10_000


def _batch() -> bytes:
    articles = [Article(f"10.5555/crash.{i}") for i in range(RECORDS)]
    articles[10] = Article("10.6666/not.alice")  # failures and duplicates must resume exactly too
    articles[5000] = Article("10.5555/crash.7")
    articles[9000] = Article("10.5555/bad doi")
    return deposit_xml(articles, batch_id="crash")


def _environment(settings) -> dict:
    env = dict(os.environ)
    env.update({
        "AGENCY_DATABASE_URL": settings.effective_database_url,
        "AGENCY_DATA_DIR": str(settings.data_dir),
        "AGENCY_BATCH_DIR": str(settings.batch_dir),
        "AGENCY_CHUNK_RECORDS": "50",
        "AGENCY_LEASE_SECONDS": "2",
    })
    return env


def _worker(settings) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "agency.cli", "worker", "--once"], env=_environment(settings),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _snapshot(agency) -> tuple:
    with agency.db.sessions() as session:
        handles = session.execute(select(Handle.key, Handle.name, Handle.version, Handle.revision)
                                  .order_by(Handle.key)).all()
        values = session.execute(select(HandleValue.handle_key, HandleValue.idx, HandleValue.type,
                                        HandleValue.data).order_by(HandleValue.handle_key, HandleValue.idx)).all()
        results = session.execute(select(RecordResult.seq, RecordResult.doi, RecordResult.status,
                                         RecordResult.message).order_by(RecordResult.seq)).all()
        submission = session.scalars(select(Submission)).one()
    log = (agency.settings.batch_dir / submission.storage_path / "log.xml").read_bytes()
    return handles, values, results, log, submission.status


def _deposit(agency, data: bytes) -> None:
    import io

    registrant = add_account(agency, *ALICE)
    submission, verdict = agency.intake.receive(registrant, io.BytesIO(data), "crash.xml")
    assert verdict.accepted and submission.id == 1


@pytest.mark.slow
def test_kill_minus_nine_mid_batch_then_restart_equals_uninterrupted_run(svc, settings, tmp_path):
    data = _batch()
    _deposit(svc, data)
    worker = _worker(settings)
    done_at_kill = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with svc.db.sessions() as session:
            done_at_kill = session.scalar(select(Submission.records_done))
        if done_at_kill >= 2000 or worker.poll() is not None:
            break
        time.sleep(0.01)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    assert 0 < done_at_kill < RECORDS, f"kill landed outside the batch (records_done={done_at_kill})"
    with svc.db.sessions() as session:
        assert session.scalar(select(Submission.status)) == "processing"
    restarted = _worker(settings)
    assert restarted.wait(timeout=300) == 0, restarted.stderr.read().decode()[-2000:]
    interrupted = _snapshot(svc)

    reference_settings = settings.replace(data_dir=tmp_path / "ref-var", batch_dir=tmp_path / "ref-batches",
                                          database_url=f"sqlite:///{tmp_path / 'ref.db'}")
    reference = build_agency(reference_settings)
    try:
        _deposit(reference, data)
        reference.worker.run_until_idle()
        uninterrupted = _snapshot(reference)
    finally:
        reference.db.engine.dispose()

    assert interrupted[4] == "completed"
    assert len(interrupted[2]) == RECORDS
    assert interrupted[0] == uninterrupted[0]
    assert interrupted[1] == uninterrupted[1]
    assert interrupted[2] == uninterrupted[2]
    assert interrupted[3] == uninterrupted[3]
