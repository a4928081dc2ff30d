"""The combined diagnostic (combined.xml, validated against its XSD) and the email that carries it."""

from __future__ import annotations

import email
from email import policy

from batchgen import Article, deposit_xml, many
from logcheck import parse_valid_log
from mddb_pipeline import BOB, combined_mail, deposit, folder_of, record, submission

SCHEMA = "combined_diagnostic.xsd"


def combined_root(svc, sid):
    return parse_valid_log((folder_of(svc, sid) / "combined.xml").read_bytes(), schema=SCHEMA)


def per_record(root) -> list[tuple]:
    return [(d.get("status"), d.findtext("doi"), d.find("indexing").get("status"),
             [m.text for m in d.find("indexing").findall("msg")]) for d in root.iter("record_diagnostic")]


def delivered(svc) -> list[email.message.EmailMessage]:
    svc.mail.deliver_due()
    folder = svc.settings.maildir / "new"
    files = sorted(folder.iterdir()) if folder.exists() else []
    return [email.message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]


def test_combined_xml_has_deposit_and_indexing_results_per_record(svc, client, alice):
    sid = deposit(svc, client, deposit_xml([
        Article("10.5555/ok", title="Fine"),
        Article("10.9999/not-hers"),
        Article("10.5555/ok2", title="Also fine"),
    ], batch_id="combo-1", issn="1234-5679"))
    svc.mddb.run()
    root = combined_root(svc, sid)
    assert root.get("status") == "completed" and root.get("stage") == "combined"
    assert root.findtext("submission_id") == str(sid) and root.findtext("batch_id") == "combo-1"
    assert per_record(root) == [
        ("Success", "10.5555/ok", "Success", ["Metadata indexed"]),
        ("Failure", "10.9999/not-hers", "Skipped", ["Not indexed: the deposit of this record failed"]),
        ("Success", "10.5555/ok2", "Success", ["Metadata indexed"]),
    ]
    counts = {c.tag: int(c.text) for c in root.find("batch_data")}
    assert counts == {"record_count": 3, "success_count": 2, "warning_count": 0, "failure_count": 1}
    indexing = {c.tag: int(c.text) for c in root.find("indexing_data")}
    assert indexing == {"indexed_count": 2, "warning_count": 0, "failure_count": 0, "skipped_count": 1}
    # It sits beside the batch and its deposit log.
    assert sorted(p.name for p in folder_of(svc, sid).iterdir()) == ["batch.xml", "combined.xml", "log.xml"]


def test_indexing_warnings_and_failures_are_in_the_combined_xml(svc, client, alice):
    sid = deposit(svc, client, deposit_xml([Article("10.5555/w1"), Article("10.5555/w2")], issn="1234-5678"))
    batch = folder_of(svc, sid) / "batch.xml"
    batch.write_bytes(batch.read_bytes().replace(b"10.5555/w2<", b"10.5555/changed<"))
    svc.mddb.run()
    rows = per_record(combined_root(svc, sid))
    assert rows[0][2] == "Warning" and "wrong check digit" in rows[0][3][0]
    assert rows[1][:3] == ("Success", "10.5555/w2", "Failure")
    assert "does not match its deposit log" in rows[1][3][0]


def test_text_that_needs_escaping_stays_valid_xml(svc, tmp_path):
    """SICI-style DOIs carry < and >; batch ids and messages may carry & and quotes."""
    from datetime import datetime, timezone

    from agency.metadata.combined_diagnostic import CombinedCounts, CombinedDiagnostics, CombinedRow

    doi = "10.1002/(SICI)1097-4636(199706)35:4<431::AID-JBM4>3.0.CO;2-H"
    rows = [CombinedRow(1, doi, "Success", "Successfully added", "Warning",
                        ("ISSN 'A&B' is not a valid ISSN; it was not indexed", "control \x01 char dropped")),
            CombinedRow(2, "10.5555/\"q\"", "Failure", "Invalid DOI: <bad> & worse", "Skipped", ("Not indexed",))]
    counts = CombinedCounts()
    for row in rows:
        counts.add(row)
    rows[0] = CombinedRow(1, doi, "Success", "Successfully added", "Warning",
                          ("ISSN 'A&B' is not a valid ISSN; it was not indexed", "control char dropped"))
    path = tmp_path / "combined.xml"
    CombinedDiagnostics(svc.templates).write(path, rows, counts, 7, "b&<id>", datetime.now(timezone.utc))
    root = parse_valid_log(path.read_bytes(), schema=SCHEMA)
    assert root.findtext("batch_id") == "b&<id>"
    assert per_record(root)[0][1] == doi and "A&B" in per_record(root)[0][3][0]
    assert per_record(root)[1][1] == '10.5555/"q"'
    assert {c.tag: int(c.text) for c in root.find("indexing_data")} == {
        "indexed_count": 1, "warning_count": 1, "failure_count": 0, "skipped_count": 1}
    mail = CombinedDiagnostics(svc.templates).mail(counts, 7, "b&<id>", "alice", "alice/2026/01/7", "c.xml")
    assert "&lt;bad&gt; &amp; worse" in mail.html and "<bad>" not in mail.html
    assert "Invalid DOI: <bad> & worse" in mail.text


def test_sici_doi_and_markup_in_a_batch_survive_the_whole_pipeline(svc, client, alice):
    doi = "10.5555/(SICI)1097-4636(199706)35:4<431::AID-JBM4>3.0.CO;2-H"
    sid = deposit(svc, client, deposit_xml([Article(doi, title="Tom & Jerry <3")], batch_id="b&<id>"))
    report = svc.mddb.run()
    assert report.loaded[0].indexed == 1
    root = combined_root(svc, sid)
    assert root.findtext("batch_id") == "b&<id>" and per_record(root)[0][1] == doi
    assert record(svc, doi).title == "Tom & Jerry <3"


def test_email_goes_to_the_batch_head_address_with_the_combined_xml(svc, client, alice):
    sid = deposit(svc, client, deposit_xml(many("10.5555", 2) + [Article("10.6666/theirs")],
                                           batch_id="mail-1", email="production@press.example"))
    report = svc.mddb.run()
    assert report.loaded[0].recipients == ["production@press.example"]
    [row] = combined_mail(svc)
    assert row.recipients == "production@press.example"
    assert row.attachment_path == f"{submission(svc, sid).storage_path}/combined.xml"
    [message] = delivered(svc)
    assert message["To"] == "production@press.example"
    subject = message["Subject"]
    assert "mail-1" in subject and "2 of 3 registered" in subject and "2 indexed" in subject and "1 failed" in subject
    text = message.get_body(("plain",)).get_content()
    assert "10.6666/theirs" in text and "User not allowed to add records for prefix: 10.6666" in text
    assert "Prefix not owned by your account" in text and "ask the registration agency" in text
    html = message.get_body(("html",)).get_content()
    assert "<code>10.6666/theirs</code>" in html and "Prefix not owned by your account" in html
    [part] = list(message.iter_attachments())
    assert part.get_filename() == f"submission-{sid}-combined.xml"
    assert part.get_payload(decode=True) == (folder_of(svc, sid) / "combined.xml").read_bytes()


def test_empty_or_unusable_head_address_falls_back_to_the_account(svc, client, alice):
    deposit(svc, client, deposit_xml(many("10.5555", 1), email="not-an-email"))
    deposit(svc, client, deposit_xml(many("10.5555", 1, start=5), email="two..dots@example.org"))
    report = svc.mddb.run()
    assert [f.recipients for f in report.loaded] == [["alice@example.org"], ["alice@example.org"]]
    messages = delivered(svc)
    assert [m["To"] for m in messages] == ["alice@example.org", "alice@example.org"]


def test_no_address_at_all_keeps_the_mail_visible_as_undeliverable(svc, client, alice, tmp_path):
    """A copy of batches/ loaded where the account is unknown, and the head gives no address."""
    import shutil

    from agency.config import load_settings
    from agency.services import build_agency

    sid = deposit(svc, client, deposit_xml(many("10.5555", 1), email="not-an-email"))
    copy = tmp_path / "copy"
    shutil.copytree(svc.settings.batch_dir, copy)
    other = build_agency(load_settings(environ={}, data_dir=tmp_path / "v2", batch_dir=copy, run_worker=False,
                                       run_scheduler=False, password_time_cost=1))
    try:
        report = other.mddb.run()
        assert report.loaded[0].recipients == []
        [row] = combined_mail(other)
        assert row.status == "dead" and "no usable recipient" in row.last_error
        assert row.attachment_path.endswith(f"/{sid}/combined.xml")
    finally:
        other.db.engine.dispose()


def test_each_account_gets_its_own_batch_mail(svc, client, alice, bob):
    deposit(svc, client, deposit_xml(many("10.5555", 1), email="a@press.example"))
    deposit(svc, client, deposit_xml(many("10.6666", 1), email="b@press.example"), headers=BOB)
    svc.mddb.run()
    assert sorted(m.recipients for m in combined_mail(svc)) == ["a@press.example", "b@press.example"]


def test_a_batch_is_mailed_once_however_often_it_is_loaded(svc, client, alice):
    from sqlalchemy import delete

    from agency.models import MddbLoad

    deposit(svc, client, deposit_xml(many("10.5555", 1)))
    svc.mddb.run()
    with svc.db.transaction() as session:
        session.execute(delete(MddbLoad))  # forget the load: the same log is loaded again
    assert len(svc.mddb.run().loaded) == 1
    assert len(combined_mail(svc)) == 1


def test_no_mail_when_asked(svc, client, alice):
    deposit(svc, client, deposit_xml(many("10.5555", 1)))
    report = svc.mddb.run(mail=False)
    assert len(report.loaded) == 1 and combined_mail(svc) == []


def test_advice_covers_the_common_failures(svc, client, alice):
    deposit(svc, client, deposit_xml([Article("10.5555/s", timestamp="20240301000000")]))
    sid = deposit(svc, client, deposit_xml([
        Article("10.5555/s", timestamp="20240101000000"),  # stale
        Article("10.5555/d"), Article("10.5555/d"),  # duplicate
        Article("10.5555/u", url="ftp://example.org/u"),  # invalid URL
    ], issn="0317-8470"))  # wrong ISSN check digit
    svc.mddb.run()
    [_first, message] = delivered(svc)
    text = message.get_body(("plain",)).get_content()
    for heading in ("Older or equal timestamp", "DOI repeated in the batch", "Invalid resource URL",
                    "ISSN/ISBN check digits"):
        assert heading in text, heading
    assert "timestamp element greater than the previous deposit" in text
    assert str(sid) in message["Subject"]


def test_records_rendered_once_per_shape_are_the_bytes_of_rendering_each_record(svc, tmp_path):
    """combined.xml reuses the macro's rendering of a (statuses, messages) shape for every DOI of that shape:
    the document must be byte for byte the one the macro gives when it renders every record itself."""
    from datetime import datetime, timezone

    from agency.metadata import combined_diagnostic
    from agency.metadata.combined_diagnostic import (
        COMBINED_TEMPLATE, RECORD_TEMPLATE, CombinedCounts, CombinedDiagnostics, CombinedRow,
    )

    shapes = [("Success", "Successfully added", "Success", ("Metadata indexed",)),
              ("Warning", "Added, 'but' \"quoted\"", "Warning", ("ISSN 'A&B' is not valid", "a <second> one")),
              ("Failure", "Invalid DOI: <bad> & worse", "Skipped", ()),
              ("Success", "a message holding the \x00doi\x00 mark", "Failure", ("mark \x00doi\x00 again",))]
    dois = ["10.5555/plain", "10.1002/(SICI)1097-4636(199706)35:4<431::AID-JBM4>3.0.CO;2-H", "10.5555/\"q\"&'a'"]
    rows = [CombinedRow(n, dois[n % 3] + str(n), *shapes[n % 4]) for n in range(1, 1200)]
    rows += [CombinedRow(n, f"10.5555/{n}", "Failure", f"Duplicate DOI (also record {n})", "Failure", (str(n),))
             for n in range(1200, 1200 + combined_diagnostic.SHAPES_KEPT + 10)]  # more shapes than are kept
    counts = CombinedCounts()
    for row in rows:
        counts.add(row)
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    path = tmp_path / "combined.xml"
    CombinedDiagnostics(svc.templates).write(path, rows, counts, 7, "b&<id>", when)

    each = svc.templates.get_template(RECORD_TEMPLATE).module.record_diagnostic
    expected = svc.templates.get_template(COMBINED_TEMPLATE).render(
        record_diagnostics=[each(row) for row in rows], counts=counts, submission_id=7, batch_id="b&<id>",
        indexed_at="2026-01-02T03:04:05Z", service=combined_diagnostic.SERVICE_NAME)
    assert path.read_text(encoding="utf-8") == expected
