"""The plain deposit API: /v1/deposits."""

from __future__ import annotations

import io
import threading

import pytest

from conftest import basic_headers
from batchgen import Article, deposit_xml, many
from logcheck import log_counts, log_records, parse_valid_log

ALICE = basic_headers("alice", "alice-password")


def test_wrong_or_missing_credentials_are_401_before_the_body_is_read(client, alice, svc):
    for headers in ({"Content-Type": "application/xml"}, basic_headers("alice", "wrong"),
                    basic_headers("nobody", "alice-password")):
        response = client.post("/v1/deposits", data=b"<not even xml", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
        assert response.get_json()["error"]["message"]
    assert list((svc.settings.batch_dir).rglob("batch.xml")) == []


def test_accepted_batch_answers_202_with_location_and_links(client, alice, svc):
    response = client.post("/v1/deposits", data=deposit_xml(many("10.5555", 2), batch_id="b-1"), headers=ALICE)
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "queued" and body["doi_batch_id"] == "b-1"
    assert response.headers["Location"].endswith(f"/v1/deposits/{body['submission_id']}")
    assert set(body["links"]) == {"self", "log", "file"}
    # The file is stored and the row committed before the answer.
    stored = client.get(f"/v1/deposits/{body['submission_id']}/file", headers=ALICE)
    assert stored.data == deposit_xml(many("10.5555", 2), batch_id="b-1")
    log = parse_valid_log(client.get(f"/v1/deposits/{body['submission_id']}/log", headers=ALICE).data)
    assert log.get("status") == "queued"


def test_wait_returns_the_finished_log_summary_and_records(client, alice, svc):
    done = threading.Event()
    stop = threading.Event()

    def work():
        while not stop.is_set():
            svc.worker.run_once() or stop.wait(0.02)
        done.set()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        response = client.post("/v1/deposits?wait=30", data=deposit_xml(many("10.5555", 3)), headers=ALICE)
    finally:
        stop.set()
        thread.join()
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "completed"
    assert body["counts"]["success_count"] == 3
    assert [r["msg"] for r in body["records"]] == ["Successfully added"] * 3


def _with_worker_thread(svc, action):
    stop = threading.Event()

    def work():
        while not stop.is_set():
            svc.worker.run_once() or stop.wait(0.02)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        return action()
    finally:
        stop.set()
        thread.join()


def test_waited_answer_and_log_equal_the_stored_results(client, alice, svc, monkeypatch):
    """The worker hands a small batch's results to the waiting request and writes the log from
    them without reading them back: both must say exactly what the stored rows say."""
    newer = deposit_xml([Article("10.5555/kept.stale")], timestamp="20250101000000", batch_id="newer")
    _with_worker_thread(svc, lambda: client.post("/v1/deposits?wait=30", data=newer, headers=ALICE))
    handed = []
    original = svc.finished_results
    monkeypatch.setattr(svc, "finished_results", lambda sid: handed.append(original(sid)) or handed[-1])
    articles = [*many("10.5555", 3), Article("10.5555/test.2"), Article("10.6666/not.ours"),
                Article("10.5555/bad.url", url="ftp://example.org/x"), Article("10.5555/kept.stale"),
                Article("10.5555/with space")]
    response = _with_worker_thread(svc, lambda: client.post("/v1/deposits?wait=30", data=deposit_xml(articles),
                                                            headers=ALICE))
    assert response.status_code == 200, response.get_data(as_text=True)
    waited = response.get_json()
    assert handed and handed[0] is not None and len(handed[0]) == len(articles)  # the in-memory path ran
    stored = client.get(f"/v1/deposits/{waited['submission_id']}", headers=ALICE).get_json()
    assert waited["records"] == stored["records"]
    assert [r["status"] for r in stored["records"]] == ["Success"] * 3 + ["Failure"] * 5
    assert "Duplicate" in stored["records"][3]["msg"] and "prefix: 10.6666" in stored["records"][4]["msg"]
    log = parse_valid_log(client.get(f"/v1/deposits/{waited['submission_id']}/log", headers=ALICE).data)
    assert log_records(log) == [(r["status"], r["doi"], r["msg"]) for r in stored["records"]]


def test_wait_is_bounded(client, alice, svc):
    response = client.post("/v1/deposits?wait=0.2", data=deposit_xml(many("10.5555", 1)), headers=ALICE)
    assert response.status_code == 202  # no worker running: still queued when the wait ends
    assert response.get_json()["status"] == "queued"


def test_multipart_upload_is_accepted(client, alice):
    data = {"file": (io.BytesIO(deposit_xml(many("10.5555", 1))), "my-batch.xml")}
    response = client.post("/v1/deposits", data=data, headers=basic_headers("alice", "alice-password", None),
                           content_type="multipart/form-data")
    assert response.status_code == 202
    assert response.get_json()["file_name"] == "my-batch.xml"


def test_multipart_without_file_part_is_400(client, alice):
    response = client.post("/v1/deposits", data={"other": "x"}, content_type="multipart/form-data",
                           headers=basic_headers("alice", "alice-password", None))
    assert response.status_code == 400
    assert "'file'" in response.get_json()["error"]["message"]


def test_wrong_content_type_is_415(client, alice):
    response = client.post("/v1/deposits", data=b"{}", headers=basic_headers("alice", "alice-password",
                                                                            "application/json"))
    assert response.status_code == 415
    assert "application/xml" in response.get_json()["error"]["message"]


@pytest.fixture
def small_limit_client(svc, alice):
    from agency.app import create_app
    from agency.services import build_agency

    tiny = build_agency(svc.settings.replace(max_batch_bytes=2000))
    yield create_app(agency=tiny).test_client(), tiny
    tiny.db.engine.dispose()


def test_body_over_the_limit_is_413_and_nothing_is_kept(small_limit_client):
    client, tiny = small_limit_client
    response = client.post("/v1/deposits", data=deposit_xml(many("10.5555", 20)), headers=ALICE)
    assert response.status_code == 413
    assert "2000 bytes" in response.get_json()["error"]["message"]
    assert not list(tiny.settings.batch_dir.rglob("*.xml"))
    assert not list((tiny.settings.batch_dir / ".incoming").glob("*"))


def test_malformed_xml_is_400_with_line_and_column_and_is_recorded(client, alice):
    response = client.post("/v1/deposits", data=deposit_xml(many("10.5555", 1)).replace(b"</titles>", b""),
                           headers=ALICE)
    assert response.status_code == 400
    body = response.get_json()
    assert body["status"] == "refused" and body["refusal"]["kind"] == "malformed"
    error = body["refusal"]["errors"][0]
    assert error["line"] and error["column"] and error["message"]
    listed = client.get("/v1/deposits", headers=ALICE).get_json()["submissions"]
    assert listed[0]["submission_id"] == body["submission_id"] and listed[0]["status"] == "refused"
    log = parse_valid_log(client.get(f"/v1/deposits/{body['submission_id']}/log", headers=ALICE).data)
    assert log.find("refusal").get("kind") == "malformed"
    assert log.find("refusal/error").get("line") == str(error["line"])


def test_schema_invalid_is_422_with_every_error(client, alice):
    bad = deposit_xml(many("10.5555", 2)).replace(b"<year>2024</year></publication_date>\n        <pages>",
                                                  b"<year>20x4</year></publication_date>\n        <pages>")
    response = client.post("/v1/deposits", data=bad, headers=ALICE)
    assert response.status_code == 422
    errors = response.get_json()["refusal"]["errors"]
    assert len(errors) == 2
    assert all(e["path"].endswith("/publication_date/year") and e["line"] for e in errors)


def test_pending_cap_answers_429_with_retry_after(svc, alice):
    from agency.app import create_app
    from agency.services import build_agency

    capped = build_agency(svc.settings.replace(max_pending_per_account=2))
    client = create_app(agency=capped).test_client()
    for _ in range(2):
        assert client.post("/v1/deposits", data=deposit_xml(many("10.5555", 1)), headers=ALICE).status_code == 202
    response = client.post("/v1/deposits", data=deposit_xml(many("10.5555", 1)), headers=ALICE)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    capped.worker.run_until_idle()
    assert client.post("/v1/deposits", data=deposit_xml(many("10.5555", 1)), headers=ALICE).status_code == 202
    capped.db.engine.dispose()


def test_listing_is_own_newest_first_and_filters(client, alice, bob):
    client.post("/v1/deposits", data=deposit_xml(many("10.5555", 1), batch_id="first"), headers=ALICE)
    client.post("/v1/deposits?file_name=second.xml", data=deposit_xml(many("10.5555", 1), batch_id="second"),
                headers=ALICE)
    client.post("/v1/deposits", data=deposit_xml(many("10.6666", 1), batch_id="bobs"),
                headers=basic_headers("bob", "bob-password"))
    listed = client.get("/v1/deposits", headers=ALICE).get_json()["submissions"]
    assert [s["doi_batch_id"] for s in listed] == ["second", "first"]
    assert [s["doi_batch_id"] for s in client.get("/v1/deposits?doi_batch_id=first", headers=ALICE)
            .get_json()["submissions"]] == ["first"]
    assert [s["doi_batch_id"] for s in client.get("/v1/deposits?file_name=second.xml", headers=ALICE)
            .get_json()["submissions"]] == ["second"]


def test_listing_limit_is_kept_within_bounds_whatever_is_asked(client, alice):
    for n in range(3):
        client.post("/v1/deposits", data=deposit_xml(many("10.5555", 1), batch_id=f"b{n}"), headers=ALICE)
    for asked, expected in (("2", 2), ("-1", 1), ("0", 1), ("abc", 3), ("99999999", 3)):
        response = client.get(f"/v1/deposits?limit={asked}", headers=ALICE)
        assert response.status_code == 200, (asked, response.data)
        assert len(response.get_json()["submissions"]) == expected, asked


def test_another_accounts_submission_is_404_never_its_content(client, alice, bob):
    response = client.post("/v1/deposits", data=deposit_xml(many("10.6666", 1)),
                           headers=basic_headers("bob", "bob-password"))
    sid = response.get_json()["submission_id"]
    for suffix in ("", "/log", "/file"):
        other = client.get(f"/v1/deposits/{sid}{suffix}", headers=ALICE)
        assert other.status_code == 404
        assert b"10.6666" not in other.data


def test_completed_log_has_every_record_and_adds_up(client, alice, svc):
    data = deposit_xml([Article("10.5555/a"), Article("10.6666/b"), Article("10.5555/a")], batch_id="mix")
    sid = client.post("/v1/deposits", data=data, headers=ALICE).get_json()["submission_id"]
    svc.worker.run_until_idle()
    root = parse_valid_log(client.get(f"/v1/deposits/{sid}/log", headers=ALICE).data)
    assert root.get("status") == "completed"
    assert root.findtext("submission_id") == str(sid) and root.findtext("batch_id") == "mix"
    assert [r[0] for r in log_records(root)] == ["Success", "Failure", "Failure"]
    counts = log_counts(root)
    assert counts == {"record_count": 3, "success_count": 1, "warning_count": 0, "failure_count": 2}
    log_file = next(svc.settings.batch_dir.rglob("log.xml"))
    assert log_file.read_bytes() == client.get(f"/v1/deposits/{sid}/log", headers=ALICE).data


def test_a_query_job_is_not_a_deposit(client, alice, svc):
    lines = "\n".join(f"1234-5679|Journal|Smith|1||{i}|2024|full_text|k{i}|" for i in range(40))
    response = client.post("/v1/queries", data=lines, headers=basic_headers("alice", "alice-password", "text/plain"))
    assert response.status_code == 202
    job = response.get_json()["submission_id"]
    assert client.get(f"/v1/deposits/{job}", headers=ALICE).status_code == 404
    assert client.get("/v1/deposits", headers=ALICE).get_json()["submissions"] == []
