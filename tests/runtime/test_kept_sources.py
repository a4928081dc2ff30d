"""URL-update and query-job files read again after a slice that failed while reading them.

A runner keeps each submission's open line stream between slices. A stream that raised
is exhausted: reused, it would end the submission at once, "completed" with fewer lines
than its file holds (the bug issue 10 found in the deposit runner). Each file here is
unreadable for its first read only; the retry must read every line."""

from __future__ import annotations

import errno

import pytest
from sqlalchemy import select

from agency.admin import url_updates
from agency.app import create_app
from agency.models import Submission
from agency.query import jobs
from agency.services import build_agency
from conftest import ALICE, add_account, basic_headers
from recordsdata import register

LINES = 25


@pytest.fixture
def agency(settings):
    svc = build_agency(settings.replace(chunk_records=10, worker_slice_records=20, worker_max_attempts=3,
                                        worker_retry_base_seconds=0.0, worker_retry_max_seconds=0.0,
                                        query_sync_lines=0))
    add_account(svc, *ALICE)
    yield svc
    svc.stop_background()
    svc.db.engine.dispose()


def unreadable_once(monkeypatch, module, file_name: str) -> dict:
    real_open, left = open, {"failures": 1}

    def flaky_open(file, *args, **kwargs):
        if str(file).endswith(file_name) and left["failures"]:
            left["failures"] -= 1
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(module, "open", flaky_open, raising=False)
    return left


def finished(svc, submission_id: int) -> Submission:
    svc.worker.run_until_idle()
    with svc.db.sessions() as session:
        return session.scalars(select(Submission).where(Submission.id == submission_id)).one()


def test_a_url_update_file_unreadable_at_first_is_read_whole_on_retry(agency, monkeypatch):
    client = create_app(agency=agency).test_client()
    dois = [f"10.5555/kept.{n}" for n in range(LINES)]
    register(agency, client, dois)
    left = unreadable_once(monkeypatch, url_updates, url_updates.URL_FILE)
    text = "".join(f"{doi}\thttps://moved.example.org/{n}\n" for n, doi in enumerate(dois)).encode()
    posted = client.post("/v1/url-updates", data=text, headers=basic_headers("alice", "alice-password", "text/plain"))
    assert posted.status_code == 202, posted.get_json()
    row = finished(agency, posted.get_json()["submission_id"])
    assert left["failures"] == 0  # the first read did fail
    assert (row.status, row.record_count, row.success_count) == ("completed", LINES, LINES)
    assert client.get(f"/{dois[-1]}").headers["Location"] == f"https://moved.example.org/{LINES - 1}"


def test_a_query_file_unreadable_at_first_is_answered_whole_on_retry(agency, monkeypatch):
    client = create_app(agency=agency).test_client()
    left = unreadable_once(monkeypatch, jobs, jobs.QUERY_FILE)
    text = "".join(f"1234-5679|Journal of Tests|Smith|1|1|{n + 1}|2024|full_text|key{n}|\n" for n in range(LINES))
    posted = client.post("/v1/queries", data=text.encode(),
                         headers=basic_headers("alice", "alice-password", "text/plain"))
    assert posted.status_code == 202, posted.get_data(as_text=True)[:300]
    row = finished(agency, posted.get_json()["submission_id"])
    assert left["failures"] == 0
    assert (row.status, row.record_count) == ("completed", LINES)
