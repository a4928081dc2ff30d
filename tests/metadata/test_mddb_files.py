"""The load reads files: missing or unreadable ones are reported (and retried), a copy of batches/ loads alone."""

from __future__ import annotations

import shutil

from sqlalchemy import select

from agency.config import load_settings
from agency.models import MetadataRecord
from agency.services import build_agency
from batchgen import Article, deposit_xml, many
from conftest import PG_URL
from mddb_pipeline import ALICE, BOB, all_records, deposit, folder_of, loads, submission, table_snapshot


def test_missing_batch_file_is_reported_then_loaded_once_restored(svc, client, alice):
    sid = deposit(svc, client, deposit_xml(many("10.5555", 2)))
    batch = folder_of(svc, sid) / "batch.xml"
    saved = batch.read_bytes()
    batch.unlink()
    report = svc.mddb.run()
    assert [f.outcome for f in report.folders] == ["failed"]
    assert "batch.xml is missing" in report.failed[0].error
    assert submission(svc, sid).index_status == "failed"
    row = loads(svc)[submission(svc, sid).storage_path]
    assert row.status == "failed" and "batch.xml is missing" in row.error
    assert svc.mddb.status().failed[0].folder == row.folder
    # Reported again on the next run, not forgotten.
    assert [f.outcome for f in svc.mddb.run().folders] == ["failed"]
    batch.write_bytes(saved)
    report = svc.mddb.run()
    assert [f.outcome for f in report.folders] == ["loaded"]
    assert submission(svc, sid).index_status == "indexed"
    assert len(all_records(svc)) == 2
    assert svc.mddb.status().failed == []


def test_missing_log_of_a_completed_submission_is_reported(svc, client, alice):
    sid = deposit(svc, client, deposit_xml(many("10.5555", 2)))
    (folder_of(svc, sid) / "log.xml").unlink()
    report = svc.mddb.run()
    assert [f.outcome for f in report.folders] == ["failed"]
    assert "log.xml is missing" in report.failed[0].error
    assert submission(svc, sid).index_status == "failed"
    assert all_records(svc) == {}


def test_malformed_log_is_reported(svc, client, alice):
    sid = deposit(svc, client, deposit_xml(many("10.5555", 2)))
    (folder_of(svc, sid) / "log.xml").write_bytes(b'<doi_batch_diagnostic status="completed"><record_diag')
    report = svc.mddb.run()
    assert "log.xml is not well-formed" in report.failed[0].error
    assert all_records(svc) == {}


def test_truncated_batch_file_is_reported(svc, client, alice):
    sid = deposit(svc, client, deposit_xml(many("10.5555", 3)))
    batch = folder_of(svc, sid) / "batch.xml"
    batch.write_bytes(batch.read_bytes()[:-200])
    report = svc.mddb.run()
    assert [f.outcome for f in report.folders] == ["failed"]
    assert "batch.xml cannot be read" in report.failed[0].error


def test_unreadable_log_is_reported(svc, client, alice):
    sid = deposit(svc, client, deposit_xml(many("10.5555", 1)))
    log_path = folder_of(svc, sid) / "log.xml"
    log_path.unlink()
    log_path.mkdir()  # there, but not a file anyone can read (unlike chmod, this holds for root too)
    report = svc.mddb.run()
    assert [f.outcome for f in report.folders] == ["failed"]
    assert "log.xml cannot be read" in report.failed[0].error
    assert submission(svc, sid).index_status == "failed"


def test_batch_file_that_no_longer_matches_its_log_fails_those_records(svc, client, alice):
    sid = deposit(svc, client, deposit_xml([Article("10.5555/one"), Article("10.5555/two")]))
    batch = folder_of(svc, sid) / "batch.xml"
    batch.write_bytes(batch.read_bytes().replace(b"10.5555/two<", b"10.5555/swapped<"))
    report = svc.mddb.run()
    assert report.loaded[0].indexed == 1 and report.loaded[0].failures == 1
    assert set(all_records(svc)) == {"10.5555/ONE"}


def test_refused_batches_are_noted_not_indexed(svc, client, alice):
    response = client.post("/v1/deposits", data=b"<doi_batch><head>", headers=ALICE)
    assert response.status_code == 400
    report = svc.mddb.run()
    assert [f.outcome for f in report.folders] == ["refused"]
    assert svc.mddb.run().folders == []
    assert all_records(svc) == {}


def test_copy_of_batches_loads_into_an_empty_database(svc, client, alice, bob, tmp_path, database_url):
    deposit(svc, client, deposit_xml([Article("10.5555/x", title="Old")], timestamp="20240101000000"))
    deposit(svc, client, deposit_xml([Article("10.5555/x", title="New")], timestamp="20240202000000"))
    deposit(svc, client, deposit_xml(many("10.6666", 3)), headers=BOB)
    svc.mddb.run()
    original = table_snapshot(svc)

    copy = tmp_path / "copied-batches"
    shutil.copytree(svc.settings.batch_dir, copy)
    for combined in copy.rglob("combined.xml"):
        combined.unlink()
    fresh_url = f"sqlite:///{tmp_path / 'fresh.db'}" if database_url.startswith("sqlite") else database_url
    if not database_url.startswith("sqlite"):
        _drop_everything(svc)
    fresh = build_agency(load_settings(environ={}, data_dir=tmp_path / "fresh-var", batch_dir=copy,
                                       database_url=fresh_url, run_worker=False, run_scheduler=False,
                                       password_time_cost=1))
    try:
        report = fresh.mddb.run(mail=False)
        assert len(report.loaded) == 3 and report.failed == []
        assert table_snapshot(fresh) == original
        assert len(list(copy.rglob("combined.xml"))) == 3
        assert fresh.mddb.run().folders == []
    finally:
        fresh.db.engine.dispose()


def _drop_everything(svc) -> None:
    """On PostgreSQL the fresh database is the same schema, emptied."""
    from agency.models.base import Base

    Base.metadata.drop_all(svc.db.engine)
    with svc.db.engine.begin() as connection:  # and its schema version: empty, as a new database is
        connection.exec_driver_sql("DROP TABLE alembic_version")
    assert PG_URL


def test_load_row_remembers_the_log_hash(svc, client, alice):
    import hashlib

    sid = deposit(svc, client, deposit_xml(many("10.5555", 1)))
    svc.mddb.run()
    folder = submission(svc, sid).storage_path
    log_bytes = (svc.settings.batch_dir / folder / "log.xml").read_bytes()
    assert loads(svc)[folder].log_sha256 == hashlib.sha256(log_bytes).hexdigest()
    # Touching the log (same bytes) is recognized without loading it again.
    (svc.settings.batch_dir / folder / "log.xml").write_bytes(log_bytes)
    assert svc.mddb.run().folders == []
    with svc.db.sessions() as session:
        assert session.scalar(select(MetadataRecord.submission_id)) == sid
