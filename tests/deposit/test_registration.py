"""Registration in the handle store: timestamp precedence, ownership, per-record failures."""

from __future__ import annotations

from sqlalchemy import select

from agency.handles.store import find_handle, handle_values, resolve_url
from agency.handles.values import AdminRecord
from agency.models import Handle
from batchgen import Article, deposit_xml, many


def outcome(records):
    return [(r["status"], r["msg"]) for r in records]


def test_new_dois_are_added_with_url_and_admin_values(svc, deposit):
    body, records = deposit(deposit_xml(many("10.5555", 3)))
    assert body["status"] == "completed"
    assert [r["msg"] for r in records] == ["Successfully added"] * 3
    with svc.db.sessions() as session:
        assert resolve_url(session, "10.5555/test.2") == "https://example.org/articles/test.2"
        values = handle_values(session, "10.5555/test.2")
        assert [(v.index, v.type) for v in values] == [(1, "URL"), (100, "HS_ADMIN")]
        admin = AdminRecord.decode(values[1].data)
        assert (admin.handle, admin.index, admin.permission_string) == ("0.NA/10.5555", 200, "111111111111")
        assert find_handle(session, "10.5555/TEST.2").version == "20240101000000".zfill(19)


def test_newer_timestamp_updates_older_or_equal_is_refused(svc, deposit):
    deposit(deposit_xml([Article("10.5555/p", url="https://example.org/v1")], timestamp="20240101000000"))
    _, records = deposit(deposit_xml([Article("10.5555/p", url="https://example.org/v2")],
                                     timestamp="20240101000001"))
    assert outcome(records) == [("Success", "Successfully updated")]
    _, records = deposit(deposit_xml([Article("10.5555/p", url="https://example.org/v3")],
                                     timestamp="20240101000001"))
    assert outcome(records) == [("Failure", "Record not processed because submitted version: 20240101000001 "
                                            "is less or equal to previously submitted version 20240101000001")]
    _, records = deposit(deposit_xml([Article("10.5555/p", url="https://example.org/v4")],
                                     timestamp="20230101000000"))
    assert records[0]["status"] == "Failure"
    with svc.db.sessions() as session:
        assert resolve_url(session, "10.5555/p") == "https://example.org/v2"
        assert find_handle(session, "10.5555/p").revision == 2


def test_record_timestamp_wins_over_batch_timestamp(svc, deposit):
    deposit(deposit_xml([Article("10.5555/r", timestamp="500")], timestamp="900"))
    _, records = deposit(deposit_xml([Article("10.5555/r", url="https://example.org/new", timestamp="600")],
                                     timestamp="100"))
    assert outcome(records) == [("Success", "Successfully updated")]
    _, records = deposit(deposit_xml([Article("10.5555/r", timestamp="550")], timestamp="99999"))
    assert "submitted version: 550 is less or equal to previously submitted version 600" in records[0]["msg"]


def test_timestamps_compare_as_numbers_not_text(svc, deposit):
    deposit(deposit_xml([Article("10.5555/n")], timestamp="999"))
    _, records = deposit(deposit_xml([Article("10.5555/n")], timestamp="1000"))
    assert records[0]["msg"] == "Successfully updated"


def test_unix_seconds_against_stored_calendar_timestamp_says_so(svc, deposit):
    deposit(deposit_xml([Article("10.5555/u")], timestamp="20240101000000"))
    _, records = deposit(deposit_xml([Article("10.5555/u")], timestamp="1700000000"))
    assert records[0]["status"] == "Failure"
    assert "looks like Unix seconds" in records[0]["msg"]


def test_dois_are_case_insensitive_and_keep_first_spelling_until_updated(svc, deposit):
    deposit(deposit_xml([Article("10.5555/MixedCase")], timestamp="1"))
    _, records = deposit(deposit_xml([Article("10.5555/mixedcase")], timestamp="1"))
    assert records[0]["status"] == "Failure"
    with svc.db.sessions() as session:
        assert session.scalar(select(Handle.name)) == "10.5555/MixedCase"
        assert len(session.scalars(select(Handle)).all()) == 1


def test_foreign_prefix_fails_and_writes_nothing(svc, deposit, bob):
    _, records = deposit(deposit_xml([Article("10.6666/theirs"), Article("10.5555/mine")]))
    assert outcome(records)[0] == ("Failure", "User not allowed to add records for prefix: 10.6666")
    assert records[1]["status"] == "Success"
    with svc.db.sessions() as session:
        assert find_handle(session, "10.6666/theirs") is None


def test_duplicate_in_batch_is_reported_on_the_second(svc, deposit):
    _, records = deposit(deposit_xml([Article("10.5555/d", url="https://example.org/first"),
                                      Article("10.5555/D", url="https://example.org/second")]))
    assert records[0]["status"] == "Success"
    assert records[1]["status"] == "Failure" and "Duplicate DOI in this batch" in records[1]["msg"]
    assert "record 1" in records[1]["msg"]
    with svc.db.sessions() as session:
        assert resolve_url(session, "10.5555/d") == "https://example.org/first"


def test_broken_dois_urls_and_timestamps_fail_one_by_one(svc, deposit):
    articles = [
        Article("10.5555/ok1"),
        Article("10.5555/bad doi"),
        Article("10.5555/badurl", url="ftp://example.org/x"),
        Article("10.5555/relative", url="/articles/1"),
        Article("10.5555/badts", timestamp="2024-01-01"),
        Article("10.5555/longts", timestamp="1" * 20),
        Article("10.5555/ok2"),
    ]
    body, records = deposit(deposit_xml(articles))
    statuses = [r["status"] for r in records]
    assert statuses == ["Success", "Failure", "Failure", "Failure", "Failure", "Failure", "Success"]
    assert "white space" in records[1]["msg"]
    assert "http" in records[2]["msg"] and "http" in records[3]["msg"]
    assert "1 to 19 digits" in records[4]["msg"] and "1 to 19 digits" in records[5]["msg"]
    assert body["counts"]["record_count"] == 7
    assert body["counts"]["success_count"] == 2 and body["counts"]["failure_count"] == 5


def test_nineteen_digit_timestamps_work(svc, deposit):
    deposit(deposit_xml([Article("10.5555/big", timestamp="9" * 18)]))
    _, records = deposit(deposit_xml([Article("10.5555/big", timestamp="9" * 19)]))
    assert records[0]["msg"] == "Successfully updated"


def test_pending_publication_registers_without_url(svc, deposit, client):
    xml = deposit_xml([Article("10.5555/x")]).decode()
    start, end = xml.index("<journal>"), xml.index("</journal>") + len("</journal>")
    pending = ("<pending_publication><publication><full_title>J</full_title></publication>"
               "<titles><title>Soon</title></titles><acceptance_date><year>2024</year></acceptance_date>"
               "<doi>10.5555/pending</doi></pending_publication>")
    body, records = deposit((xml[:start] + pending + xml[end:]).encode())
    assert outcome(records) == [("Success", "Successfully added")]
    with svc.db.sessions() as session:
        assert find_handle(session, "10.5555/pending") is not None
        assert resolve_url(session, "10.5555/pending") is None
    _, records = deposit(deposit_xml([Article("10.5555/pending")], timestamp="20250101000000"))
    assert records[0]["msg"] == "Successfully updated"
    with svc.db.sessions() as session:
        assert resolve_url(session, "10.5555/pending") == "https://example.org/articles/pending"


def test_markup_characters_in_dois_and_urls_are_escaped_in_the_log(svc, deposit, client):
    from conftest import basic_headers
    from logcheck import log_records, parse_valid_log

    odd = "10.5555/(SICI)1097-4636(199709)36:3<297::AID-JBM3>3.0.CO;2-G&x=\"1\""
    body, records = deposit(deposit_xml([Article(odd, url="https://example.org/a?b=1&c=<2>")]))
    assert records[0]["status"] == "Success"
    log = client.get(f"/v1/deposits/{body['submission_id']}/log", headers=basic_headers("alice", "alice-password"))
    root = parse_valid_log(log.data)
    assert log_records(root) == [("Success", odd, "Successfully added")]
    with svc.db.sessions() as session:
        assert resolve_url(session, odd.lower()) == "https://example.org/a?b=1&c=<2>"
