"""Resolution stays fast on a real server while it loads the metadata of a large batch.

The batch is registered beforehand; the server, started on the same data, finds the load
due at once and runs it (by default in a child process at lower priority). Figures are
printed (run with -s); the one timing assertion is a generous bound on the child-process run.
"""

from __future__ import annotations

import io
import statistics
import time

import pytest
import requests
from sqlalchemy import func, select

from agency.models import MetadataRecord
from agency.runtime.scheduling import MDDB_JOB, MDDB_PROMPT_JOB, last_run
from batchgen import Article, deposit_xml
from conftest import ALICE, add_account
from live_server import agency_env, start_server

pytestmark = pytest.mark.slow
RECORDS = 20_000


@pytest.mark.parametrize("child_process", ["1", "0"], ids=["child-process", "in-process"])
def test_resolution_latency_during_a_metadata_load(svc, settings, tmp_path, database_url, child_process):
    registrant = add_account(svc, *ALICE)
    data = deposit_xml([Article(f"10.5555/load.{i}", title=f"Article {i} on loads") for i in range(RECORDS)])
    submission, verdict = svc.intake.receive(registrant, io.BytesIO(data), "load.xml")
    assert verdict.accepted
    svc.worker.run_until_idle(timeout=600)

    env = agency_env(tmp_path, database_url, AGENCY_MDDB_IN_CHILD_PROCESS=child_process,
                     AGENCY_MDDB_MAIL="0", AGENCY_MDDB_INTERVAL_MINUTES="60")
    server = start_server(env)
    times: list[float] = []
    try:
        loaded, deadline = 0, time.monotonic() + 300
        with requests.Session() as http:
            while loaded < RECORDS and time.monotonic() < deadline:
                started = time.perf_counter()
                assert http.get(server.url + "/10.5555/load.7", allow_redirects=False,
                                timeout=120).status_code == 302
                times.append(time.perf_counter() - started)
                if len(times) % 20 == 0:
                    with svc.db.sessions() as session:
                        loaded = session.scalar(select(func.count()).select_from(MetadataRecord))
        # The load's last steps (its run record, its lease) end too. Whichever job loaded the records
        # (the prompt load of new deposits, or the scheduled one at start) records its finish.
        while time.monotonic() < deadline:
            runs = [run for run in (last_run(svc.db, job) for job in (MDDB_JOB, MDDB_PROMPT_JOB)) if run]
            if runs and all(run.last_status != "running" for run in runs) and \
                    any(run.last_finished_at is not None for run in runs):
                break
            time.sleep(0.1)
        else:
            pytest.fail("no metadata load recorded its finish")
    finally:
        server.stop()
    assert loaded == RECORDS, "the load did not finish"
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000
    print(f"\n[{'child process' if child_process == '1' else 'in process'}] resolver during a {RECORDS}-record "
          f"load: median {statistics.median(times) * 1000:.1f} ms, p99 {p99:.1f} ms, max {ordered[-1] * 1000:.0f} ms, "
          f"n {len(times)}")
    if child_process == "1":
        assert p99 < 2000
