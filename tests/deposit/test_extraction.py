"""Record extraction: the file stream, the validated tree and the streaming validator agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from agency.deposit.extraction import RecordCollector, iter_records
from agency.deposit.validation import DepositValidator, SchemaCatalog
from batchgen import Article, deposit_xml

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def _batch() -> bytes:
    xml = deposit_xml([Article("10.5555/a", timestamp="77"), Article("10.5555/b"),
                       Article("10.5555/c", url="ftp://example.org/c")], timestamp="55").decode()
    journal = xml[xml.index("<journal>"):xml.index("</journal>") + len("</journal>")]
    pending = ("<pending_publication><publication><full_title>J</full_title></publication>"
               "<titles><title>Soon</title></titles><acceptance_date><year>2024</year></acceptance_date>"
               "<doi>10.5555/pending</doi></pending_publication>")
    second = journal.replace("10.5555/a", "10.5555/d").replace("10.5555/b", "10.5555/e").replace(
        "10.5555/c", "10.5555/f")
    return xml.replace(journal, journal + pending + second).encode()


def test_records_in_document_order_with_their_own_or_the_batch_timestamp(tmp_path):
    path = tmp_path / "b.xml"
    path.write_bytes(_batch())
    records = list(iter_records(path, "55"))
    assert [(r.seq, r.doi, r.timestamp, r.content_type) for r in records] == [
        (1, "10.5555/a", "77", "journal_article"), (2, "10.5555/b", "55", "journal_article"),
        (3, "10.5555/c", "55", "journal_article"), (4, "10.5555/pending", "55", "pending_publication"),
        (5, "10.5555/d", "77", "journal_article"), (6, "10.5555/e", "55", "journal_article"),
        (7, "10.5555/f", "55", "journal_article")]
    assert records[3].is_pending and records[3].url is None
    assert records[2].url == "ftp://example.org/c" and not records[2].is_pending
    assert records[0].url == "https://example.org/articles/a"


def test_resuming_skips_exactly_the_records_done(tmp_path):
    path = tmp_path / "b.xml"
    path.write_bytes(_batch())
    assert [r.seq for r in iter_records(path, "55", skip=4)] == [5, 6, 7]


def test_the_validating_pass_yields_the_same_records_as_the_file(tmp_path):
    path = tmp_path / "b.xml"
    path.write_bytes(_batch())
    from_file = list(iter_records(path, "55"))
    collector = RecordCollector()
    verdict = DepositValidator(SchemaCatalog(SCHEMAS)).check(path, body_items=collector)
    assert verdict.accepted
    assert collector.records == from_file


@pytest.mark.slow
def test_reading_a_large_batch_keeps_memory_flat(tmp_path):
    import resource

    path = tmp_path / "big.xml"
    path.write_bytes(deposit_xml([Article(f"10.5555/m.{i}") for i in range(60_000)]))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    count = sum(1 for _ in iter_records(path, "1"))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert count == 60_000
    assert grown_mb < 40, f"peak memory grew by {grown_mb:.0f} MB while streaming"


def test_the_validating_pass_stops_collecting_beyond_its_limit(tmp_path):
    path = tmp_path / "b.xml"
    path.write_bytes(_batch())  # seven records, in two body items
    validator = DepositValidator(SchemaCatalog(SCHEMAS))
    exact, over = RecordCollector(limit=7), RecordCollector(limit=4)
    assert validator.check(path, body_items=exact).accepted and validator.check(path, body_items=over).accepted
    assert len(exact.records) == 7
    assert over.records is None  # held nothing more: the worker reads such a batch from its file


def test_a_batch_too_large_to_hand_over_is_registered_from_its_file(client, svc, alice, monkeypatch):
    from functools import partial

    import agency.deposit.intake
    from conftest import basic_headers
    from logcheck import log_records, parse_valid_log

    monkeypatch.setattr(agency.deposit.intake, "RecordCollector", partial(RecordCollector, limit=5))
    primed = []
    runner = svc.worker.runners["deposit"]
    original_prime = runner.prime
    monkeypatch.setattr(runner, "prime", lambda sid, records: primed.append(records) or original_prime(sid, records))
    headers = basic_headers("alice", "alice-password")
    response = client.post("/v1/deposits", data=deposit_xml([Article(f"10.5555/big.{i}") for i in range(12)]),
                           headers=headers)
    assert response.status_code == 202
    svc.worker.run_until_idle()
    assert primed == [None]
    submission_id = response.get_json()["submission_id"]
    body = client.get(f"/v1/deposits/{submission_id}", headers=headers).get_json()
    assert body["status"] == "completed" and body["counts"]["success_count"] == 12
    log = parse_valid_log(client.get(f"/v1/deposits/{submission_id}/log", headers=headers).data)
    assert [doi for _status, doi, _msg in log_records(log)] == [f"10.5555/big.{i}" for i in range(12)]
