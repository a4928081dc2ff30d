"""Retries: deterministic exponential backoff, dead after the last attempt (and kept), revival, missing files."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from agency.notify.outbox import DeliveryFailure, MailSender, enqueue_mail, list_messages, retry_dead, retry_delay
from agency.models import OutboxMessage
from agency.models.types import utcnow


class ScriptedTransport:
    """Fails the first ``failures`` connections with the given error, then accepts everything."""

    def __init__(self, failures: int = 0, permanent: bool = False) -> None:
        self.failures = failures
        self.permanent = permanent
        self.sent: list = []
        self.connects = 0

    def describe(self) -> str:
        return "scripted"

    def connect(self) -> "ScriptedTransport":
        self.connects += 1
        if self.failures > 0:
            self.failures -= 1
            raise DeliveryFailure("421 4.3.2 service not available", permanent=self.permanent)
        return self

    def send(self, row, message) -> None:
        if self.permanent:
            raise DeliveryFailure("554 5.6.0 message content rejected", permanent=True)
        self.sent.append(message)

    def close(self) -> None:
        return None


def enqueue(svc, key: str = "combined-1", **kwargs) -> OutboxMessage:
    with svc.db.transaction() as session:
        return enqueue_mail(session, key=key, recipients=["dep@example.org"], subject="s", text="t", **kwargs)


def row_of(svc, key: str = "combined-1") -> OutboxMessage:
    with svc.db.sessions() as session:
        return session.scalar(select(OutboxMessage).where(OutboxMessage.key == key))


def test_backoff_doubles_up_to_the_cap(settings):
    s = settings.replace(mail_retry_base_seconds=60, mail_retry_max_seconds=3600)
    assert [retry_delay(s, n).total_seconds() for n in range(1, 9)] == [
        60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert retry_delay(s, 10_000).total_seconds() == 3600  # no overflow however many attempts


def test_failed_attempts_follow_the_schedule_then_the_message_is_dead_and_kept(svc):
    settings = svc.settings.replace(mail_retry_base_seconds=60, mail_retry_max_seconds=300, mail_max_attempts=5)
    transport = ScriptedTransport(failures=100)
    sender = MailSender(settings, svc.db, transport)
    enqueue(svc)
    now = utcnow()
    delays = []
    for attempt in range(1, 6):
        row = row_of(svc)
        # One second early: not tried.
        assert sender.deliver_due(row.next_attempt_at - timedelta(seconds=1)) == 0
        assert row_of(svc).attempts == attempt - 1
        now = row.next_attempt_at
        assert sender.deliver_due(now) == 0
        after = row_of(svc)
        assert after.attempts == attempt
        assert after.last_error == "421 4.3.2 service not available"
        if attempt < 5:
            assert after.status == "pending"
            delays.append((after.next_attempt_at - now).total_seconds())
    assert delays == [60, 120, 240, 300]
    dead = row_of(svc)
    assert dead.status == "dead" and dead.claimed_by is None
    assert [m.id for m in list_messages(svc.db)] == [dead.id]
    assert sender.deliver_due(now + timedelta(days=30)) == 0  # never tried again on its own
    assert transport.connects == 5


def test_a_dead_message_can_be_revived_and_then_delivered(svc):
    transport = ScriptedTransport(failures=1, permanent=True)
    sender = MailSender(svc.settings, svc.db, transport)
    enqueue(svc)
    assert sender.deliver_due() == 0
    assert (row_of(svc).status, row_of(svc).attempts) == ("dead", 1)  # permanent: no pointless retries
    transport.permanent = False
    assert retry_dead(svc.db) == 1
    assert (row_of(svc).status, row_of(svc).attempts) == ("pending", 0)
    assert sender.deliver_due() == 1
    assert row_of(svc).status == "sent"
    assert len(transport.sent) == 1


def test_retry_dead_leaves_messages_without_recipients_alone(svc):
    with svc.db.transaction() as session:
        enqueue_mail(session, key="k", recipients=["nobody"], subject="s", text="t")
    assert retry_dead(svc.db) == 0
    assert row_of(svc, "k").status == "dead"


def test_one_failed_connection_counts_for_every_due_message_without_reconnecting(svc):
    transport = ScriptedTransport(failures=1)
    sender = MailSender(svc.settings, svc.db, transport)
    for n in range(3):
        enqueue(svc, f"combined-{n}")
    assert sender.deliver_due() == 0
    assert transport.connects == 1
    assert {row_of(svc, f"combined-{n}").attempts for n in range(3)} == {1}


def test_a_missing_attachment_is_retried_not_sent_without_it(svc):
    sender = MailSender(svc.settings, svc.db, ScriptedTransport())
    enqueue(svc, attachment_path="alice/2026/01/1/combined.xml")
    now = utcnow()
    assert sender.deliver_due(now) == 0
    row = row_of(svc)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "attachment alice/2026/01/1/combined.xml is missing" in row.last_error
    path = svc.settings.batch_dir / "alice/2026/01/1/combined.xml"
    path.parent.mkdir(parents=True)
    path.write_text("<x/>")
    assert sender.deliver_due(now + timedelta(hours=1)) == 1
    assert row_of(svc).status == "sent"


def test_an_attachment_too_large_to_mail_is_named_in_the_text_instead(svc):
    transport = ScriptedTransport()
    sender = MailSender(svc.settings.replace(mail_max_attachment_bytes=10), svc.db, transport)
    path = svc.settings.batch_dir / "alice/2026/01/1/combined.xml"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"<x>" + b"y" * 100 + b"</x>")
    enqueue(svc, attachment_path="alice/2026/01/1/combined.xml", html="<p>t</p>")
    assert sender.deliver_due() == 1
    [message] = transport.sent
    assert list(message.iter_attachments()) == []
    text = message.get_body(("plain",)).get_content()
    assert "combined.xml (107 bytes) is larger than the 10 bytes" in text
    assert "is not attached" in message.get_body(("html",)).get_content()


def test_an_attachment_link_leading_out_of_the_batch_folder_is_refused(svc, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not mail me")
    folder = svc.settings.batch_dir / "alice"
    folder.mkdir(parents=True)
    (folder / "log.xml").symlink_to(secret)
    transport = ScriptedTransport()
    enqueue(svc, attachment_path="alice/log.xml")
    assert MailSender(svc.settings, svc.db, transport).deliver_due() == 0
    row = row_of(svc)
    assert row.status == "dead" and "outside the batch folder" in row.last_error
    assert transport.sent == []


class BrokenTransport(ScriptedTransport):
    def send(self, row, message) -> None:
        raise RuntimeError("a bug in a transport")


def test_an_unexpected_error_costs_an_attempt_instead_of_looping_silently(svc):
    enqueue(svc)
    assert MailSender(svc.settings, svc.db, BrokenTransport()).deliver_due() == 0
    row = row_of(svc)
    assert (row.status, row.attempts, row.claimed_by) == ("pending", 1, None)
    assert "unexpected error: RuntimeError('a bug in a transport')" in row.last_error


class LeaseRecorder(ScriptedTransport):
    def send(self, row, message) -> None:
        self.sent.append(row.claimed_until)


def test_a_long_run_takes_each_lease_from_the_clock_at_claim_time(svc, monkeypatch):
    import agency.notify.outbox

    start = utcnow()
    ticks = iter(range(0, 100_000, 500))
    monkeypatch.setattr(agency.notify.outbox, "utcnow", lambda: start + timedelta(seconds=next(ticks)))
    for n in range(3):
        enqueue(svc, f"combined-{n}")
    transport = LeaseRecorder()
    assert MailSender(svc.settings, svc.db, transport).deliver_due() == 3
    first, second, third = transport.sent
    assert first < second < third  # each lease starts when its message is claimed


def test_left_out_addresses_stay_noted_after_sending(svc):
    with svc.db.transaction() as session:
        enqueue_mail(session, key="k", recipients=["dep@example.org", "junk"], subject="s", text="t")
    assert MailSender(svc.settings, svc.db, ScriptedTransport()).deliver_due() == 1
    row = row_of(svc, "k")
    assert row.status == "sent" and "'junk'" in row.last_error


def test_an_unusable_sender_address_is_refused_at_start_up(svc):
    from agency.notify.outbox import MailConfigError

    with pytest.raises(MailConfigError, match="AGENCY_MAIL_FROM 'agency' is not an address"):
        MailSender(svc.settings.replace(mail_from="agency"), svc.db)
    MailSender(svc.settings.replace(mail_from="DOI Agency <agency@ra.example.org>"), svc.db)
