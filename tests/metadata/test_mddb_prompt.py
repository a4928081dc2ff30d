"""Metadata in seconds: a completed deposit is indexed and its combined diagnostic mailed by the
scheduler's prompt load, without waiting for the daily load and without scanning batches/."""

from __future__ import annotations

import time

from sqlalchemy import select

from agency.models import JobRun, Submission
from agency.runtime.scheduling import MDDB_JOB, MDDB_PROMPT_JOB, last_run
from agency.services import build_agency
from batchgen import Article, deposit_xml, many
from conftest import ALICE, add_account, basic_headers
from mddb_pipeline import all_records, combined_mail, deposit


def test_run_pending_loads_only_the_newly_completed_deposits(svc, client, alice, settings):
    deposit(svc, client, deposit_xml(many("10.5555", 3), batch_id="first"))
    stray = settings.batch_dir / "alice" / "2020" / "01" / "999"  # a folder no pending submission names
    stray.mkdir(parents=True)
    report = svc.mddb.run_pending()
    assert [folder.outcome for folder in report.folders] == ["loaded"]
    assert len(all_records(svc)) == 3 and len(combined_mail(svc)) == 1
    with svc.db.sessions() as session:
        assert session.scalars(select(Submission.index_status)).all() == ["indexed"]
    assert last_run(svc.db, MDDB_PROMPT_JOB).last_status == "ok"
    assert last_run(svc.db, MDDB_JOB) is None  # the daily catch-up's own record is left alone
    assert svc.mddb.run_pending().folders == []  # nothing pending: no lease taken, nothing recorded
    with svc.db.sessions() as session:
        assert session.get(JobRun, MDDB_PROMPT_JOB).last_finished_at is not None
    # The daily load still catches up on everything, and loads nothing twice.
    assert [f.outcome for f in svc.mddb.run().folders] == []
    assert len(combined_mail(svc)) == 1


def test_a_deposit_is_indexed_and_mailed_within_seconds(settings):
    settings = settings.replace(run_worker=True, run_scheduler=True, mddb_poll_seconds=0.2, mail_poll_seconds=3600,
                                mddb_interval_minutes=0, mddb_hour=(time.gmtime().tm_hour + 12) % 24)
    svc = build_agency(settings)
    try:
        add_account(svc, *ALICE)
        from agency.app import create_app

        client = create_app(agency=svc, start_background=True).test_client()
        svc.mddb.run()  # the start-up catch-up, out of the way
        started = time.monotonic()
        answer = client.post("/v1/deposits?wait=20", data=deposit_xml([Article("10.5555/prompt-1")], batch_id="prompt"),
                             headers=basic_headers("alice", "alice-password"))
        assert answer.status_code == 200 and answer.get_json()["status"] == "completed"
        while not list(settings.maildir.glob("new/*.eml")) and time.monotonic() - started < 20:
            time.sleep(0.1)
        mails = list(settings.maildir.glob("new/*.eml"))
        assert mails, "no combined diagnostic mailed within 20 s"
        assert "Subject: Batch prompt: 1 of 1 registered, 1 indexed" in mails[0].read_text()
        assert [record.doi for record in all_records(svc).values()] == ["10.5555/prompt-1"]
    finally:
        svc.stop_background()
        svc.db.engine.dispose()
