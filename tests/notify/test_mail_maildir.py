"""Without SMTP: each message is an .eml file in a maildir that a person (or mutt) can open."""

from __future__ import annotations

import email
import mailbox
from datetime import timedelta
from email import policy

import pytest

from agency.notify.outbox import MailSender, MaildirTransport, enqueue_mail
from agency.models.types import utcnow


def test_maildir_file_opens_as_the_message(svc):
    attachment = svc.settings.batch_dir / "alice/2026/01/1/log.xml"
    attachment.parent.mkdir(parents=True)
    attachment.write_bytes(b"<doi_batch_diagnostic/>\n")
    with svc.db.transaction() as session:
        row = enqueue_mail(session, key="refused-1", recipients=["dep@example.org"], subject="Deposit refused",
                           text="Line 3: bad element", html="<p>Line 3: bad element</p>",
                           attachment_path="alice/2026/01/1/log.xml", attachment_name="submission-1-log.xml")
    sender = MailSender(svc.settings, svc.db)
    assert isinstance(sender.transport, MaildirTransport)
    assert sender.deliver_due() == 1

    folder = svc.settings.maildir
    files = list((folder / "new").iterdir())
    assert [f.suffix for f in files] == [".eml"]
    assert list((folder / "tmp").iterdir()) == []
    message = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert message["To"] == "dep@example.org"
    assert message["From"] == svc.settings.mail_from
    assert message["Subject"] == "Deposit refused"
    assert message["Message-ID"] == row.message_id
    assert message.get_body(("plain",)).get_content().strip() == "Line 3: bad element"
    assert message.get_body(("html",)).get_content().strip() == "<p>Line 3: bad element</p>"
    [part] = list(message.iter_attachments())
    assert part.get_filename() == "submission-1-log.xml"
    assert part.get_payload(decode=True) == attachment.read_bytes()
    # The standard library (and so any maildir reader) sees exactly this one message.
    assert [m["Message-ID"] for m in mailbox.Maildir(str(folder), create=False)] == [row.message_id]


def _deliver_then_crash_before_marking_sent(svc, monkeypatch):
    """Enqueue one message and deliver it with a sender that dies before recording the delivery."""
    with svc.db.transaction() as session:
        enqueue_mail(session, key="combined-1", recipients=["dep@example.org"], subject="s", text="t")
    crashing = MailSender(svc.settings, svc.db)
    monkeypatch.setattr(crashing, "_record_sent", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    now = utcnow()
    with pytest.raises(KeyboardInterrupt):
        crashing.deliver_due(now)
    return now


def test_redelivery_after_a_crash_rewrites_the_same_file(svc, monkeypatch):
    now = _deliver_then_crash_before_marking_sent(svc, monkeypatch)
    restarted = MailSender(svc.settings, svc.db)
    assert restarted.deliver_due(now + timedelta(seconds=svc.settings.mail_lease_seconds + 1)) == 1
    assert len(list((svc.settings.maildir / "new").iterdir())) == 1


def test_a_message_already_read_is_not_written_again(svc, monkeypatch):
    now = _deliver_then_crash_before_marking_sent(svc, monkeypatch)
    folder = svc.settings.maildir
    [delivered] = list((folder / "new").iterdir())
    delivered.rename(folder / "cur" / f"{delivered.name}:2,S")  # a mail reader marked it seen
    assert MailSender(svc.settings, svc.db).deliver_due(now + timedelta(hours=1)) == 1
    assert list((folder / "new").iterdir()) == []
    assert len(list((folder / "cur").iterdir())) == 1


def test_an_unwritable_maildir_is_a_retried_failure(svc):
    svc.settings.data_dir.mkdir(parents=True, exist_ok=True)
    svc.settings.maildir.write_text("a file where the maildir should be")
    with svc.db.transaction() as session:
        enqueue_mail(session, key="combined-1", recipients=["dep@example.org"], subject="s", text="t")
    assert MailSender(svc.settings, svc.db).deliver_due() == 0
    from agency.notify.outbox import list_messages

    [row] = list_messages(svc.db)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "cannot create the maildir" in row.last_error
