"""A deposit is never reported completed with fewer records than its file holds.

The file is removed, unreadable for a while, or the disk fills between chunks:
the submission backs off and retries, stops as ``failed`` with its reason once
attempts run out (seen in the API, the servlet's XML log and the operator's
listing), and a retry by the operator finishes it exactly.
"""

from __future__ import annotations

import errno
import io
import sqlite3

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from agency.admin.audit import Actor, events
from agency.admin.submissions import RetryRefused, list_submissions, retry_failed
from agency.deposit import extraction, runner
from agency.models import Handle, OutboxMessage, RecordResult, Submission
from agency.services import build_agency
from batchgen import Article, deposit_xml
from conftest import basic_headers
from logcheck import log_counts, log_records, parse_valid_log

RECORDS = 50


@pytest.fixture
def fast_retry(settings):
    """Small chunks and slices; retries at once (the back-off itself is checked on its own)."""
    return settings.replace(chunk_records=10, worker_slice_records=20, worker_max_attempts=3,
                            worker_retry_base_seconds=0.0, worker_retry_max_seconds=0.0,
                            operator_email="ra-staff@example.org")


@pytest.fixture
def worker_agency(fast_retry):
    agency = build_agency(fast_retry)
    yield agency
    agency.db.engine.dispose()


@pytest.fixture
def accepted(worker_agency, alice, fast_retry):
    """A batch accepted by another process (the web service), so the worker reads it from its file."""
    web = build_agency(fast_retry)
    try:
        data = deposit_xml([Article(f"10.5555/lost.{i}") for i in range(RECORDS)], batch_id="lost-batch")
        submission, verdict = web.intake.receive(alice, io.BytesIO(data), "lost.xml")
    finally:
        web.db.engine.dispose()
    assert verdict.accepted
    return submission


def _row(agency, submission_id: int) -> Submission:
    with agency.db.sessions() as session:
        return session.get(Submission, submission_id)


def _run_checking(agency, submission_id: int) -> Submission:
    """Run the worker until idle, checking after every slice that no short batch reads completed."""
    while agency.worker.run_once():
        row = _row(agency, submission_id)
        assert not (row.status == "completed" and row.record_count < RECORDS), (row.status, row.record_count)
    return _row(agency, submission_id)


def _batch_file(agency, submission):
    return agency.settings.batch_dir / submission.storage_path / "batch.xml"


def _registered(agency) -> int:
    with agency.db.sessions() as session:
        return session.scalar(select(func.count()).select_from(Handle))


def test_a_removed_file_fails_the_submission_with_its_reason_and_a_retry_finishes_it(worker_agency, accepted):
    path = _batch_file(worker_agency, accepted)
    kept = path.read_bytes()
    path.unlink()

    row = _run_checking(worker_agency, accepted.id)
    assert row.status == "failed"
    assert row.attempts == 3
    assert "missing" in row.failure_reason
    assert row.record_count == 0 and _registered(worker_agency) == 0

    operator_view = list_submissions(worker_agency.db, ["failed"])
    assert [line.id for line in operator_view] == [accepted.id]
    assert "missing" in operator_view[0].describe()
    # The depositor (the batch head's address) and the operator are told, once, with the reason.
    (notice,) = _failure_mails(worker_agency)
    assert notice.recipients.split(",") == ["depositor@example.org", "ra-staff@example.org"]
    assert f"submission {accepted.id}" in notice.subject and "lost-batch" in notice.subject
    assert row.failure_reason in notice.text_body and f"/v1/deposits/{accepted.id}" in notice.text_body

    path.write_bytes(kept)
    retry_failed(worker_agency.db, accepted.id, Actor.operator("ops"), reason="file restored from backup")
    with worker_agency.db.sessions() as session:
        (event,) = events(session, subject=f"submission:{accepted.id}")
        assert (event.action, event.actor, event.before["status"]) == ("submission.retry", "operator:ops", "failed")
    row = _run_checking(worker_agency, accepted.id)
    assert (row.status, row.record_count, row.success_count, row.attempts) == ("completed", RECORDS, RECORDS, 0)
    assert _registered(worker_agency) == RECORDS
    assert len(_failure_mails(worker_agency)) == 1  # the retry that finished sent no second notice


def _failure_mails(agency) -> list[OutboxMessage]:
    with agency.db.sessions() as session:
        return list(session.scalars(select(OutboxMessage).where(OutboxMessage.key.like("failed-%"))))


def test_a_file_unreadable_for_a_while_is_retried_and_never_completes_short(worker_agency, accepted, monkeypatch):
    """The first claim's read fails: the next claim must read the file again, not end the batch."""
    path = _batch_file(worker_agency, accepted)
    failures = {"left": 2}

    def flaky_open(file, *args, **kwargs):
        if str(file) == str(path) and failures["left"]:
            failures["left"] -= 1
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return open(file, *args, **kwargs)

    monkeypatch.setattr(extraction, "open", flaky_open, raising=False)
    row = _run_checking(worker_agency, accepted.id)
    assert failures["left"] == 0
    assert (row.status, row.record_count, row.success_count, row.attempts) == ("completed", RECORDS, RECORDS, 2)
    assert _registered(worker_agency) == RECORDS


def test_a_file_that_breaks_between_slices_fails_instead_of_completing_short(worker_agency, accepted, fast_retry):
    """The first slice registers 20 records; then the file is truncated and another worker takes
    the next slice: failed, never completed with 20."""
    path = _batch_file(worker_agency, accepted)
    assert worker_agency.worker.run_once()
    assert _row(worker_agency, accepted.id).records_done == 20
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    other = build_agency(fast_retry)
    try:
        row = _run_checking(other, accepted.id)
    finally:
        other.db.engine.dispose()
    assert row.status == "failed" and row.records_done == 20
    assert "XMLSyntaxError" in row.failure_reason


def _disk_full() -> OperationalError:
    return OperationalError("INSERT INTO record_results", {}, sqlite3.OperationalError("database or disk is full"))


def test_disk_full_between_chunks_backs_off_without_using_up_attempts(worker_agency, accepted, monkeypatch):
    real_insert = runner.bulk_insert
    calls = {"n": 0}

    def filling_insert(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= 3:  # two chunks went in; then the disk is full
            raise _disk_full()
        return real_insert(*args, **kwargs)

    monkeypatch.setattr(runner, "bulk_insert", filling_insert)
    backing_off = worker_agency.settings.replace(worker_retry_max_seconds=3600.0)
    worker_agency.worker.settings = backing_off
    for _ in range(4):
        worker_agency.worker.run_once()
    row = _row(worker_agency, accepted.id)
    assert row.status == "processing" and row.records_done == 20
    assert row.attempts == 0, "a full disk is not the batch's fault"
    assert "out of storage space" in row.failure_reason
    assert row.retry_at is not None and (row.retry_at - row.last_slice_at).total_seconds() >= 3599
    assert not worker_agency.worker.run_once(), "the worker backs off instead of retrying at once"

    monkeypatch.setattr(runner, "bulk_insert", real_insert)  # space freed
    worker_agency.worker.settings = worker_agency.settings
    with worker_agency.db.transaction() as session:
        session.get(Submission, accepted.id).retry_at = None
    row = _run_checking(worker_agency, accepted.id)
    assert (row.status, row.record_count, row.success_count) == ("completed", RECORDS, RECORDS)
    with worker_agency.db.sessions() as session:
        seqs = session.scalars(select(RecordResult.seq).order_by(RecordResult.seq)).all()
    assert seqs == list(range(1, RECORDS + 1))


def test_disk_full_when_writing_the_log_keeps_the_batch_unfinished(worker_agency, accepted, monkeypatch):
    from agency.deposit import logs

    real_fsync = logs.os.fsync

    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(logs.os, "fsync", full)
    for _ in range(6):
        worker_agency.worker.run_once()
    row = _row(worker_agency, accepted.id)
    assert row.status == "processing" and row.records_done == RECORDS and row.attempts == 0
    log_dir = _batch_file(worker_agency, accepted).parent
    assert not (log_dir / "log.xml").exists() and not (log_dir / "log.xml.part").exists()

    monkeypatch.setattr(logs.os, "fsync", real_fsync)
    row = _run_checking(worker_agency, accepted.id)
    assert (row.status, row.record_count) == ("completed", RECORDS)
    root = parse_valid_log((log_dir / "log.xml").read_bytes())
    assert log_counts(root)["record_count"] == RECORDS


def test_a_failed_deposit_shows_its_failure_to_the_api_and_to_crossref_pollers(worker_agency, accepted, client):
    _batch_file(worker_agency, accepted).unlink()
    _run_checking(worker_agency, accepted.id)
    headers = basic_headers("alice", "alice-password")

    body = client.get(f"/v1/deposits/{accepted.id}", headers=headers).get_json()
    assert body["status"] == "failed"
    assert "missing" in body["failure"]["reason"] and body["failure"]["attempts"] == 3
    listing = client.get("/v1/deposits", headers=headers).get_json()["submissions"]
    assert [(s["submission_id"], s["status"]) for s in listing] == [(accepted.id, "failed")]

    response = client.get("/servlet/submissionDownload", query_string={
        "usr": "alice", "pwd": "alice-password", "doi_batch_id": "lost-batch", "type": "result"})
    root = parse_valid_log(response.data)
    assert root.get("status") == "completed"
    ((status, doi, message),) = log_records(root)
    assert status == "Failure" and doi in (None, "") and "missing" in message
    assert log_counts(root) == {"record_count": 1, "success_count": 0, "warning_count": 0, "failure_count": 1}


def test_only_failed_submissions_can_be_retried(worker_agency, accepted):
    with pytest.raises(RetryRefused, match="not failed"):
        retry_failed(worker_agency.db, accepted.id, Actor.operator("ops"))
    with pytest.raises(RetryRefused, match="no submission"):
        retry_failed(worker_agency.db, 999_999, Actor.operator("ops"))


def test_retries_back_off_doubling_up_to_the_limit(settings):
    from agency.runtime.worker import retry_delay

    tuned = settings.replace(worker_retry_base_seconds=2.0, worker_retry_max_seconds=60.0)
    assert [retry_delay(tuned, n) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]


@pytest.mark.parametrize("path, field", [("/v1/deposits", None), ("/servlet/deposit", "fname")])
def test_disk_full_at_intake_is_507_saying_the_service_is_out_of_space(client, alice, svc, monkeypatch,
                                                                       path, field):
    from agency.deposit import intake

    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(intake.os, "fsync", full)
    data = deposit_xml([Article("10.5555/full.1")])
    if field:
        response = client.post(path, data={"operation": "doMDUpload", "login_id": "alice",
                                           "login_passwd": "alice-password", field: (io.BytesIO(data), "b.xml")},
                               content_type="multipart/form-data")
    else:
        response = client.post(path, data=data, headers=basic_headers("alice", "alice-password"))
    assert response.status_code == 507
    assert response.headers["Retry-After"] == "300"
    assert "out of storage space" in response.get_data(as_text=True)
    with svc.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Submission)) == 0
    assert not any(svc.settings.batch_dir.joinpath(".incoming").iterdir())
