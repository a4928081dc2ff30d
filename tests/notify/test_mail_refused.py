"""Refused asynchronous deposits (/servlet/deposit) are emailed with their errors and log; API ones are not."""

from __future__ import annotations

import email
import io
from email import policy

from batchgen import Article, deposit_xml
from sqlalchemy import select

from agency.models import OutboxMessage, Submission
from agency.notify.notices import head_email

INVALID = deposit_xml([Article("10.5555/refused.1")], batch_id="b-42", email="press@example.org").replace(
    b"<registrant>Test Press</registrant>", b"<registrant>Test Press</registrant>\n    <bogus/>")


def servlet_deposit(client, body: bytes, file_name: str = "refused.xml"):
    return client.post("/servlet/deposit", content_type="multipart/form-data", data={
        "login_id": "alice", "login_passwd": "alice-password", "operation": "doMDUpload",
        "fname": (io.BytesIO(body), file_name)})


def outbox(svc) -> list[OutboxMessage]:
    with svc.db.sessions() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def submission(svc, submission_id: int) -> Submission:
    with svc.db.sessions() as session:
        return session.get(Submission, submission_id)


def delivered(svc) -> list[email.message.EmailMessage]:
    assert svc.mail.deliver_due() >= 0
    folder = svc.settings.maildir / "new"
    files = sorted(folder.iterdir()) if folder.exists() else []
    return [email.message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]


def test_refused_servlet_deposit_emails_the_errors_with_the_log(svc, alice, client):
    response = servlet_deposit(client, INVALID)
    assert response.status_code == 422
    submission_id = int(response.headers["X-Submission-Id"])

    [row] = outbox(svc)
    assert row.key == f"refused-{submission_id}"
    [message] = delivered(svc)
    assert message["To"] == "press@example.org"  # the batch head's address, not the account's
    # The batch id is read from the refused file when it gets that far (as the log gives it).
    assert message["Subject"] == f"Deposit refused: refused.xml (batch b-42), submission {submission_id}"
    text = message.get_body(("plain",)).get_content()
    assert "The file does not conform to the deposit schema." in text
    assert "line 8" in text and "bogus" in text and "This element is not expected" in text
    assert f"/v1/deposits/{submission_id}/log" in text
    html = message.get_body(("html",)).get_content()
    assert "<td>8</td>" in html and "bogus" in html and "This element is not expected" in html
    [part] = list(message.iter_attachments())
    assert part.get_filename() == f"submission-{submission_id}-log.xml"
    assert part.get_content_type() == "application/xml"
    log_file = svc.settings.batch_dir / submission(svc, submission_id).storage_path / "log.xml"
    assert part.get_payload(decode=True) == log_file.read_bytes()
    assert b"bogus" in log_file.read_bytes()
    assert outbox(svc)[0].status == "sent"


def test_refused_api_deposit_sends_no_email(svc, alice, client):
    response = client.post("/v1/deposits", data=INVALID, content_type="application/xml",
                           headers={"Authorization": "Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ="})
    assert response.status_code == 422
    assert response.get_json()["status"] == "refused"
    assert outbox(svc) == []


def test_each_refused_deposit_gets_its_own_email(svc, alice, client):
    first = servlet_deposit(client, INVALID, "one.xml")
    second = servlet_deposit(client, INVALID, "one.xml")
    assert first.headers["X-Submission-Id"] != second.headers["X-Submission-Id"]
    assert len(outbox(svc)) == 2
    assert len(delivered(svc)) == 2


def test_accepted_servlet_deposit_gets_no_refusal_email(svc, alice, client):
    response = servlet_deposit(client, deposit_xml([Article("10.5555/fine.1")]))
    assert response.status_code == 200
    svc.worker.run_until_idle()
    assert [row for row in outbox(svc) if row.key.startswith("refused-")] == []


def test_malformed_after_the_head_still_mails_the_head_address(svc, alice, client):
    valid = deposit_xml([Article("10.5555/cut.1")], email="press@example.org")
    broken = valid[:valid.index(b"<body>")] + b"<body><journal></oops>"
    assert servlet_deposit(client, broken).status_code == 400
    [message] = delivered(svc)
    assert message["To"] == "press@example.org"
    assert "not well-formed" in message.get_body(("plain",)).get_content()


def test_malformed_before_the_address_mails_the_account(svc, alice, client):
    assert servlet_deposit(client, b"<doi_batch><head><depositor><email_addr").status_code == 400
    [message] = delivered(svc)
    assert message["To"] == "alice@example.org"


def test_unusable_head_address_falls_back_to_the_account(svc, alice, client):
    body = INVALID.replace(b"press@example.org", b"press at example dot org")
    servlet_deposit(client, body)
    [message] = delivered(svc)
    assert message["To"] == "alice@example.org"


def test_hostile_file_is_not_read_again_and_mails_the_account(svc, alice, client):
    body = INVALID.replace(b'<?xml version="1.0" encoding="UTF-8"?>\n',
                           b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE doi_batch [<!ENTITY e "x">]>\n')
    assert servlet_deposit(client, body).status_code == 400
    [message] = delivered(svc)
    assert message["To"] == "alice@example.org"
    assert "DOCTYPE" in message.get_body(("plain",)).get_content()


def test_names_from_the_file_are_escaped_in_the_html(svc, alice, client):
    servlet_deposit(client, INVALID, file_name="<img src=x onerror=alert(1)>&.xml")
    [message] = delivered(svc)
    html = message.get_body(("html",)).get_content()
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;&amp;.xml" in html
    assert "<img src=x onerror=alert(1)>&.xml" in message.get_body(("plain",)).get_content()


def test_head_email_reads_only_the_head(tmp_path):
    path = tmp_path / "batch.xml"
    path.write_bytes(deposit_xml([Article("10.5555/x.1")], email="Press@Example.org"))
    assert head_email(path) == "Press@example.org"  # the local part keeps its case; the domain is lowered
    path.write_bytes(b'<doi_batch xmlns="urn:x"><head><doi_batch_id>1</doi_batch_id></head>'
                     b'<body><depositor><email_address>late@example.org</email_address></depositor></body></doi_batch>')
    assert head_email(path) is None  # an address outside head/depositor is not the depositor's
    path.write_bytes(b"")
    assert head_email(path) is None
    assert head_email(tmp_path / "missing.xml") is None
