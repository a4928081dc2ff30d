"""/healthz (alive), /readyz (database, batch folder, worker and scheduler), /metrics (Prometheus)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from batchgen import Article, deposit_xml
from conftest import basic_headers

from agency.db import Database


def samples(client) -> dict[tuple, float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_healthz_answers_without_the_database(client, svc, monkeypatch):
    monkeypatch.setattr(svc, "db", None)
    assert client.get("/healthz").status_code == 200


def test_readyz_reports_each_check(client, svc, alice):
    body = client.get("/readyz").get_json()
    assert body == {"database": "ok", "batch_dir": "writable", "worker": "off", "scheduler": "off",
                    "scheduler_lease": "none", "ready": True}


def test_readyz_is_503_when_the_database_does_not_answer(client, svc, monkeypatch, tmp_path):
    broken = create_engine(f"sqlite:///{tmp_path}/missing/dir/agency.db")
    monkeypatch.setattr(svc, "db", Database(broken, sessionmaker(broken)))
    response = client.get("/readyz")
    assert response.status_code == 503 and response.get_json()["database"].startswith("failing")


def test_readyz_is_503_when_the_batch_folder_is_missing_or_the_worker_stopped(client, svc, monkeypatch, tmp_path):
    monkeypatch.setattr(svc, "settings", svc.settings.replace(batch_dir=tmp_path / "gone"))
    response = client.get("/readyz")
    assert response.status_code == 503 and response.get_json()["batch_dir"].startswith("not writable")
    monkeypatch.setattr(svc, "settings", svc.settings.replace(batch_dir=tmp_path, run_worker=True))
    response = client.get("/readyz")  # asked for, but no thread runs it
    assert response.status_code == 503 and response.get_json()["worker"] == "stopped"


def test_metrics_count_records_resolutions_sign_ins_and_read_the_queues(client, svc, alice, deposit):
    before = samples(client)
    body, records = deposit(deposit_xml([Article("10.5555/m-1"), Article("10.5555/m-2"),
                                         Article("10.9999/not-ours")], batch_id="metrics"))
    assert [r["status"] for r in records] == ["Success", "Success", "Failure"]
    assert client.get("/10.5555/m-1").status_code == 302
    assert client.get("/10.5555/none").status_code == 404
    assert client.get("/v1/deposits", headers=basic_headers("alice", "wrong")).status_code == 401
    client.post("/v1/deposits", data=deposit_xml([Article("10.5555/m-3")], batch_id="queued"),
                headers=basic_headers("alice", "alice-password"))
    after = samples(client)

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("agency_records_total", outcome="added") == 2
    assert grew("agency_records_total", outcome="prefix") == 1
    assert grew("agency_deposit_seconds_count") == 1
    assert grew("agency_resolutions_total", outcome="redirected") == 1
    assert grew("agency_resolutions_total", outcome="not_found") == 1
    assert grew("agency_resolution_seconds_count") == 2
    assert grew("agency_failed_sign_ins_total") == 1
    assert after[("agency_submissions", (("kind", "deposit"), ("state", "completed")))] == 1
    assert after[("agency_submissions", (("kind", "deposit"), ("state", "queued")))] == 1
    assert after[("agency_oldest_queued_submission_age_seconds", ())] >= 0
    assert after[("agency_outbox_messages", (("state", "dead"),))] == 0
    assert after[("agency_seconds_since_metadata_load", ())] == -1  # never loaded
    svc.mddb.run()
    assert 0 <= samples(client)[("agency_seconds_since_metadata_load", ())] < 60
