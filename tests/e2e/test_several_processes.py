"""Several processes on PostgreSQL: 2 web processes (gunicorn), 3 `agency worker` processes, one
elected scheduler. 20 batches from three accounts; one worker is killed with SIGKILL in the middle
of a batch. Every batch completes with the same handles and logs as a single-process run, and
every combined diagnostic is mailed exactly once."""

from __future__ import annotations

import email
import os
import signal
import time
from collections import Counter

import pytest
import requests
from sqlalchemy import select

from agency.config import load_settings
from agency.models import Handle, HandleValue, Submission
from agency.services import build_agency
from batchgen import Article, deposit_xml
from conftest import add_account
from live_server import agency_env
from logcheck import log_records, parse_valid_log
from topology import start_topology

pytestmark = pytest.mark.slow

ACCOUNTS = [("alice", "alice-password", "alice@example.org", ["10.5555"]),
            ("bob", "bob-password", "bob@example.org", ["10.6666"]),
            ("carol", "carol-password", "carol@example.org", ["10.7777"])]
BATCHES, RECORDS = 20, 120
# Small chunks and slices so a batch is many commits long (there is a middle to kill a worker in),
# short leases so the killed worker's batch is resumed within seconds.
TUNING = {"AGENCY_CHUNK_RECORDS": "10", "AGENCY_WORKER_SLICE_RECORDS": "40", "AGENCY_LEASE_SECONDS": "4",
          "AGENCY_SCHEDULER_LEASE_SECONDS": "6", "AGENCY_MDDB_POLL_SECONDS": "0.5", "AGENCY_MAIL_POLL_SECONDS": "2",
          "AGENCY_WORKER_POLL_SECONDS": "0.1"}


def batches() -> list[tuple[tuple, bytes, str]]:
    made = []
    for number in range(BATCHES):
        account = ACCOUNTS[number % len(ACCOUNTS)]
        prefix = account[3][0]
        # Each article has a page of its own: "added with conflict" warnings name the DOIs deposited
        # earlier, so they would depend on which worker finished first, not on what was deposited.
        articles = [Article(f"{prefix}/mp.{number}.{n}") for n in range(RECORDS)]
        if number % 4 == 3:  # a record under someone else's prefix: a failure in the log
            articles.append(Article(f"10.9999/mp.{number}"))
        made.append((account, deposit_xml(articles, batch_id=f"mp-{number}", email=account[2]), f"mp-{number}"))
    return made


def handles_of(svc) -> set[tuple[str, str, str]]:
    with svc.db.sessions() as session:
        return set(session.execute(select(Handle.key, Handle.version, HandleValue.data)
                                   .join(HandleValue, HandleValue.handle_key == Handle.key)
                                   .where(HandleValue.idx == 1)).all())


def logs_of(svc) -> dict[str, list]:
    with svc.db.sessions() as session:
        rows = session.execute(select(Submission.doi_batch_id, Submission.storage_path)).all()
    found = {}
    for batch_id, folder in rows:
        root = parse_valid_log((svc.settings.batch_dir / folder / "log.xml").read_bytes())
        found[batch_id] = (root.get("status"), log_records(root))
    return found


def single_process_reference(tmp_path) -> tuple[set, dict]:
    settings = load_settings(environ={}, data_dir=tmp_path / "single" / "var", batch_dir=tmp_path / "single" / "b",
                             database_url=f"sqlite:///{tmp_path / 'single.db'}", password_time_cost=1,
                             run_worker=False, run_scheduler=False, chunk_records=10, worker_slice_records=40)
    svc = build_agency(settings)
    try:
        from agency.app import create_app
        from conftest import basic_headers

        for account in ACCOUNTS:
            add_account(svc, *account)
        client = create_app(agency=svc).test_client()
        for account, data, _ in batches():
            assert client.post("/v1/deposits", data=data, headers=basic_headers(*account[:2])).status_code == 202
        svc.worker.run_until_idle()
        return handles_of(svc), logs_of(svc)
    finally:
        svc.db.engine.dispose()


def kill_a_worker_mid_batch(svc, worker_pids: set[int], deadline: float) -> int:
    """SIGKILL the worker holding a batch that is part done; returns the batch's submission id."""
    while time.monotonic() < deadline:
        with svc.db.sessions() as session:
            for row in session.execute(select(Submission.id, Submission.lease_owner, Submission.records_done,
                                              Submission.record_count).where(Submission.status == "processing")):
                pid = int(row.lease_owner.split(":")[1]) if row.lease_owner else None
                if pid in worker_pids and 0 < row.records_done:
                    os.kill(pid, signal.SIGKILL)
                    return row.id
        time.sleep(0.02)
    pytest.fail("no worker was caught in the middle of a batch")


def test_two_web_processes_three_workers_one_scheduler_and_a_killed_worker(tmp_path, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("the several-process topology runs on PostgreSQL")
    env = agency_env(tmp_path, database_url, **TUNING)
    setup = build_agency(load_settings(environ=env))
    for account in ACCOUNTS:
        add_account(setup, *account)
    topology = start_topology(env, tmp_path / "logs", web_processes=2, workers=3)
    try:
        ready = requests.get(topology.url + "/readyz", timeout=10).json()
        assert ready["worker"] == "off" and ready["scheduler"] == "off"  # web processes serve only
        for account, data, _ in batches():
            answer = requests.post(topology.url + "/v1/deposits", data=data, auth=account[:2],
                                   headers={"Content-Type": "application/xml"}, timeout=60)
            assert answer.status_code == 202, answer.text
        killed = kill_a_worker_mid_batch(setup, {p.pid for p in topology.workers}, time.monotonic() + 60)

        maildir = tmp_path / "var" / "maildir" / "new"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            with setup.db.sessions() as session:
                statuses = Counter(session.scalars(select(Submission.index_status)))
            if statuses.get("indexed") == BATCHES and len(list(maildir.glob("*.eml"))) >= BATCHES:
                break
            time.sleep(0.5)
        time.sleep(3)  # a second copy of any mail would have arrived by now
        mails = Counter(" ".join(email.message_from_string(path.read_text())["Subject"].split())
                        for path in maildir.glob("*.eml"))
        ready = requests.get(topology.url + "/readyz", timeout=10).json()
    finally:
        topology.stop()
    output = topology.output()
    with setup.db.sessions() as session:
        finished = session.execute(select(Submission.doi_batch_id, Submission.status, Submission.index_status)).all()
    assert sorted(status for _, status, _ in finished) == ["completed"] * BATCHES, output[-3000:]
    assert [index for _, _, index in finished] == ["indexed"] * BATCHES
    assert len(mails) == BATCHES and set(mails.values()) == {1}, mails
    assert all(subject.startswith("Batch mp-") for subject in mails)
    with setup.db.sessions() as session:
        assert session.get(Submission, killed).status == "completed"

    handles, logs = handles_of(setup), logs_of(setup)
    expected_handles, expected_logs = single_process_reference(tmp_path)
    assert handles == expected_handles
    assert logs == expected_logs
    # One scheduler: the web processes never ran one, and the elected worker process was named.
    web_output = (tmp_path / "logs" / "web.log").read_text()
    assert "runs the scheduled jobs" not in web_output
    assert ready["scheduler_lease"] != "none"
    assert 1 <= output.count("runs the scheduled jobs") <= 2  # the first elected, and a successor if it was killed
    setup.db.engine.dispose()
