"""The metadata load through the real pipeline: what is indexed, precedence, idempotency, bookkeeping."""

from __future__ import annotations

from sqlalchemy import event

from batchgen import Article, deposit_xml, many
from mddb_pipeline import (ALICE, BOB, all_records, contributors, deposit, folder_of, identifiers, loads, record,
                           submission, table_snapshot)


def test_completed_deposit_is_indexed_with_its_fields(svc, client, alice):
    sid = deposit(svc, client, deposit_xml(
        [Article("10.5555/Mixed.Case", title="The Physics of Élan", surname="Müller", first_page="e15743")],
        timestamp="20240102030405", journal="Journal of Tests", issn="1234-5679"))
    assert submission(svc, sid).index_status == "pending"
    report = svc.mddb.run()
    assert [f.outcome for f in report.folders] == ["loaded"]
    assert report.loaded[0].indexed == 1

    row = record(svc, "10.5555/mixed.case")
    assert row.doi == "10.5555/Mixed.Case" and row.doi_key == "10.5555/MIXED.CASE"
    assert row.url == "https://example.org/articles/Mixed.Case"
    assert (row.content_type, row.body_type, row.publication_type) == ("journal_article", "journal", "full_text")
    assert (row.title, row.title_key) == ("The Physics of Élan", "physics of elan")
    assert (row.journal_title, row.journal_title_key) == ("Journal of Tests", "journal of tests")
    assert (row.volume, row.volume_key, row.issue, row.issue_key) == ("1", "1", "1", "1")
    assert (row.first_page, row.first_page_key) == ("e15743", "15743")
    assert row.year == 2024 and row.version == "0000020240102030405"
    assert (row.first_author_surname, row.first_author_key) == ("Müller", "muller")
    assert (row.publisher, row.registrant, row.depositor_login) == ("Test Press", "Test Press", "alice")
    assert row.submission_id == sid and row.batch_folder == submission(svc, sid).storage_path
    people = contributors(svc, "10.5555/Mixed.Case")
    assert [(p.position, p.surname, p.given_name, p.is_first_author, p.role) for p in people] == [
        (1, "Müller", "Ann", True, "author")]
    assert identifiers(svc, "10.5555/Mixed.Case") == {("issn", "1234-5679", True)}
    done = submission(svc, sid)
    assert done.index_status == "indexed" and done.indexed_at is not None


def test_loading_again_changes_nothing(svc, client, alice):
    deposit(svc, client, deposit_xml(many("10.5555", 5)))
    first = svc.mddb.run()
    assert len(first.loaded) == 1
    before = table_snapshot(svc)
    loads_before = {k: (v.log_sha256, v.attempts) for k, v in loads(svc).items()}
    again = svc.mddb.run()
    assert again.folders == [] and again.skipped_because is None
    assert table_snapshot(svc) == before
    assert {k: (v.log_sha256, v.attempts) for k, v in loads(svc).items()} == loads_before


def test_same_log_loaded_into_a_forgotten_state_rewrites_identical_rows(svc, client, alice):
    """Even when the bookkeeping is lost (the load row deleted), reloading yields the same index."""
    from sqlalchemy import delete

    from agency.models import MddbLoad

    deposit(svc, client, deposit_xml(many("10.5555", 3)))
    svc.mddb.run(mail=False)
    before = table_snapshot(svc)
    with svc.db.transaction() as session:
        session.execute(delete(MddbLoad))
    assert len(svc.mddb.run(mail=False).loaded) == 1
    assert table_snapshot(svc) == before


def test_newer_deposit_replaces_the_metadata(svc, client, alice):
    deposit(svc, client, deposit_xml([Article("10.5555/a", title="First title", surname="Old")],
                                     timestamp="20240101000000", issn="1234-5679"))
    svc.mddb.run()
    deposit(svc, client, deposit_xml([Article("10.5555/a", title="Second title", surname="New",
                                              url="https://example.org/v2")],
                                     timestamp="20240201000000", issn="0317-8471"))
    svc.mddb.run()
    row = record(svc, "10.5555/a")
    assert (row.title, row.url, row.version) == ("Second title", "https://example.org/v2", "0000020240201000000")
    assert [p.surname for p in contributors(svc, "10.5555/a")] == ["New"]
    assert identifiers(svc, "10.5555/a") == {("issn", "0317-8471", True)}


def test_both_batches_in_one_load_newest_wins(svc, client, alice):
    deposit(svc, client, deposit_xml([Article("10.5555/b", title="Old")], timestamp="20240101000000"))
    deposit(svc, client, deposit_xml([Article("10.5555/b", title="New")], timestamp="20240301000000"))
    report = svc.mddb.run()
    assert len(report.loaded) == 2
    assert record(svc, "10.5555/b").title == "New"


def test_failed_records_are_never_indexed(svc, client, alice, bob):
    deposit(svc, client, deposit_xml([Article("10.5555/kept", title="Registered")], timestamp="20240301000000"))
    svc.mddb.run()
    # Older timestamp (stale), a prefix alice does not own, a bad URL, a repeat in the batch.
    deposit(svc, client, deposit_xml([
        Article("10.5555/kept", title="Stale rewrite", timestamp="20240101000000"),
        Article("10.6666/not-alices", title="Not hers"),
        Article("10.5555/bad-url", url="ftp://example.org/x"),
        Article("10.5555/twice", title="First"),
        Article("10.5555/TWICE", title="Second"),
    ], timestamp="20240401000000"))
    report = svc.mddb.run()
    assert report.loaded[0].registered == 1 and report.loaded[0].indexed == 1
    assert record(svc, "10.5555/kept").title == "Registered"
    assert record(svc, "10.6666/not-alices") is None
    assert record(svc, "10.5555/bad-url") is None
    assert record(svc, "10.5555/twice").title == "First"
    assert set(all_records(svc)) == {"10.5555/KEPT", "10.5555/TWICE"}


def test_wrong_check_digit_and_missing_title_are_warnings_not_silence(svc, client, alice):
    deposit(svc, client, deposit_xml([Article("10.5555/w", title="")], issn="1234-5678"))
    report = svc.mddb.run()
    assert report.loaded[0].indexed == 1 and report.loaded[0].warnings == 1
    assert identifiers(svc, "10.5555/w") == {("issn", "1234-5678", False)}
    assert record(svc, "10.5555/w").title is None


def test_only_completed_batches_are_loaded(svc, client, alice):
    response = client.post("/v1/deposits", data=deposit_xml(many("10.5555", 2)), headers=ALICE)
    assert response.status_code == 202
    assert svc.mddb.run().folders == []  # queued: no log yet
    svc.worker.run_until_idle()
    assert len(svc.mddb.run().loaded) == 1


def test_batches_of_several_accounts_are_all_loaded(svc, client, alice, bob):
    deposit(svc, client, deposit_xml(many("10.5555", 2)))
    deposit(svc, client, deposit_xml(many("10.6666", 3)), headers=BOB)
    report = svc.mddb.run()
    assert sorted(f.folder.split("/")[0] for f in report.loaded) == ["alice", "bob"]
    assert {r.depositor_login for r in all_records(svc).values()} == {"alice", "bob"}
    assert len(all_records(svc)) == 5


def test_records_beyond_one_chunk_are_all_indexed(svc, client, alice):
    svc.mddb.settings = svc.settings.replace(mddb_chunk_records=7)
    deposit(svc, client, deposit_xml(many("10.5555", 30)))
    report = svc.mddb.run()
    assert report.loaded[0].indexed == 30
    assert len(all_records(svc)) == 30


def _commits_of_a_load(svc) -> int:
    commits = []
    listener = lambda _connection: commits.append(1)  # noqa: E731
    event.listen(svc.db.engine, "commit", listener)
    try:
        assert len(svc.mddb.run().loaded) == 1
    finally:
        event.remove(svc.db.engine, "commit", listener)
    return len(commits)


def test_the_last_whole_chunk_commits_with_the_load_record(svc, client, alice):
    svc.mddb.settings = svc.settings.replace(mddb_chunk_records=5)
    deposit(svc, client, deposit_xml(many("10.5555", 4)))
    within_one_chunk = _commits_of_a_load(svc)
    deposit(svc, client, deposit_xml(many("10.5555", 10, start=5)))
    assert _commits_of_a_load(svc) == within_one_chunk + 1  # one chunk on its own, the other with the load
    assert len(all_records(svc)) == 14


def test_a_whole_chunk_read_before_the_batch_breaks_stays_indexed(svc, client, alice):
    svc.mddb.settings = svc.settings.replace(mddb_chunk_records=5)
    sid = deposit(svc, client, deposit_xml(many("10.5555", 6)))
    batch = folder_of(svc, sid) / "batch.xml"
    data = batch.read_bytes()
    batch.write_bytes(data[:data.index(b"<journal_article", data.index(b"test.5</doi>"))])  # cut before record 6
    report = svc.mddb.run()
    assert "batch.xml cannot be read" in report.failed[0].error
    assert len(all_records(svc)) == 5
