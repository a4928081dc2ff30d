"""Delivery over real SMTP (aiosmtpd on loopback): content, recipients, outages, refusals, TLS, exactly once."""

from __future__ import annotations

import email
import shutil
import socket
import ssl
import subprocess
import threading
from datetime import timedelta
from email import policy
from types import SimpleNamespace

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import select

from agency.notify.outbox import MailSender, enqueue_mail
from agency.models import OutboxMessage
from agency.models.types import utcnow

HOST = "127.0.0.1"


class Collector:
    """An aiosmtpd handler that keeps every envelope and refuses the addresses it is told to."""

    def __init__(self) -> None:
        self.envelopes = []
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(e.content, policy=policy.default) for e in self.envelopes]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start_server(port: int | None = None, **smtp_options) -> SimpleNamespace:
    collector = Collector()
    controller = Controller(collector, hostname=HOST, port=port or free_port(), **smtp_options)
    controller.start()
    return SimpleNamespace(collector=collector, port=controller.port, controller=controller)


@pytest.fixture
def smtp_server():
    server = start_server()
    yield server
    server.controller.stop()


def sender_for(svc, url: str, **changes) -> MailSender:
    return MailSender(svc.settings.replace(smtp_url=url, mail_from="DOI Agency <agency@ra.example.org>",
                                           **changes), svc.db)


def enqueue(svc, key: str, recipients=("dep@example.org",), **kwargs):
    with svc.db.transaction() as session:
        return enqueue_mail(session, key=key, recipients=list(recipients), subject=f"Subject {key}",
                            text=f"Text of {key}", **kwargs)


def rows(svc) -> dict[str, OutboxMessage]:
    with svc.db.sessions() as session:
        return {row.key: row for row in session.scalars(select(OutboxMessage))}


def test_content_html_attachment_and_recipients(svc, smtp_server):
    attachment = svc.settings.batch_dir / "alice/2026/01/5/combined.xml"
    attachment.parent.mkdir(parents=True)
    attachment.write_bytes(b'<?xml version="1.0"?>\n<doi_batch_diagnostic status="completed">\xc3\xa9</doi_batch_diagnostic>\n')
    row = enqueue(svc, "combined-5", recipients=["dep@example.org", "boss@example.org"],
                  html="<p>Batch <b>5</b> r\u00e9sultats</p>", attachment_path="alice/2026/01/5/combined.xml",
                  attachment_name="combined-5.xml")
    sender = sender_for(svc, f"smtp://{HOST}:{smtp_server.port}")

    assert sender.deliver_due() == 1

    [envelope] = smtp_server.collector.envelopes
    assert envelope.mail_from == "agency@ra.example.org"
    assert envelope.rcpt_tos == ["dep@example.org", "boss@example.org"]
    [message] = smtp_server.collector.messages()
    assert message["From"] == "DOI Agency <agency@ra.example.org>"
    assert message["To"] == "dep@example.org, boss@example.org"
    assert message["Subject"] == "Subject combined-5"
    assert message["Message-ID"] == row.message_id
    assert message["Auto-Submitted"] == "auto-generated"
    assert email.utils.parsedate_to_datetime(message["Date"]) == row.created_at.replace(microsecond=0)
    assert message.get_body(("plain",)).get_content().strip() == "Text of combined-5"
    assert message.get_body(("html",)).get_content().strip() == "<p>Batch <b>5</b> r\u00e9sultats</p>"
    [part] = list(message.iter_attachments())
    assert part.get_filename() == "combined-5.xml"
    assert part.get_content_type() == "application/xml"
    assert part.get_payload(decode=True) == attachment.read_bytes()

    stored = rows(svc)["combined-5"]
    assert (stored.status, stored.attempts, stored.last_error, stored.claimed_by) == ("sent", 1, None, None)
    assert stored.sent_at is not None
    # A restarted sender finds nothing more to do.
    assert sender_for(svc, f"smtp://{HOST}:{smtp_server.port}").deliver_due() == 0
    assert len(smtp_server.collector.envelopes) == 1


def test_smtp_down_then_up_every_message_arrives_exactly_once(svc):
    port = free_port()  # nothing listens here yet
    for n in range(30):
        enqueue(svc, f"combined-{n}")
    now = utcnow()
    assert sender_for(svc, f"smtp://{HOST}:{port}").deliver_due(now) == 0

    after_outage = rows(svc)
    assert len(after_outage) == 30
    for row in after_outage.values():
        assert (row.status, row.attempts) == ("pending", 1)
        assert f"cannot submit to smtp://{HOST}:{port}" in row.last_error
        assert "Connection refused" in row.last_error or "ConnectionRefused" in row.last_error
        assert row.next_attempt_at == now + timedelta(seconds=svc.settings.mail_retry_base_seconds)
    # Not due yet: nothing is tried before its time.
    assert sender_for(svc, f"smtp://{HOST}:{port}").deliver_due(now + timedelta(seconds=30)) == 0
    assert {row.attempts for row in rows(svc).values()} == {1}

    server = start_server(port)
    try:
        later = now + timedelta(seconds=61)
        senders = [sender_for(svc, f"smtp://{HOST}:{port}") for _ in range(3)]
        delivered = run_concurrently([lambda s=s: s.deliver_due(later) for s in senders])
        assert sum(delivered) == 30
        received = [m["Message-ID"] for m in server.collector.messages()]
        assert sorted(received) == sorted(row.message_id for row in after_outage.values())
        assert len(set(received)) == 30
        assert {(row.status, row.attempts) for row in rows(svc).values()} == {("sent", 2)}
        assert sum(s.deliver_due(later + timedelta(hours=1)) for s in senders) == 0
        assert len(server.collector.envelopes) == 30
    finally:
        server.controller.stop()


def run_concurrently(calls) -> list:
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list = []

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def test_many_concurrent_senders_send_each_message_once(svc, smtp_server):
    for n in range(60):
        enqueue(svc, f"refused-{n}")
    senders = [sender_for(svc, f"smtp://{HOST}:{smtp_server.port}") for _ in range(4)]
    assert sum(run_concurrently([s.deliver_due for s in senders])) == 60
    ids = [m["Message-ID"] for m in smtp_server.collector.messages()]
    assert len(ids) == len(set(ids)) == 60


def test_unknown_recipient_is_dead_at_once_and_kept(svc, smtp_server):
    smtp_server.collector.refuse["gone@example.org"] = "550 5.1.1 No such user"
    enqueue(svc, "refused-1", recipients=["gone@example.org"])
    assert sender_for(svc, f"smtp://{HOST}:{smtp_server.port}").deliver_due() == 0
    row = rows(svc)["refused-1"]
    assert (row.status, row.attempts) == ("dead", 1)
    assert "gone@example.org (550 5.1.1 No such user)" in row.last_error
    assert smtp_server.collector.envelopes == []


def test_partly_refused_recipients_still_get_the_message(svc, smtp_server):
    smtp_server.collector.refuse["gone@example.org"] = "550 5.1.1 No such user"
    enqueue(svc, "refused-2", recipients=["dep@example.org", "gone@example.org"])
    assert sender_for(svc, f"smtp://{HOST}:{smtp_server.port}").deliver_due() == 1
    [envelope] = smtp_server.collector.envelopes
    assert envelope.rcpt_tos == ["dep@example.org"]
    row = rows(svc)["refused-2"]
    assert row.status == "sent"
    assert "refused some recipients: gone@example.org (550" in row.last_error


def test_temporary_refusal_is_retried_later(svc, smtp_server):
    smtp_server.collector.refuse["dep@example.org"] = "451 4.3.0 Try again later"
    enqueue(svc, "refused-3")
    sender = sender_for(svc, f"smtp://{HOST}:{smtp_server.port}")
    now = utcnow()
    assert sender.deliver_due(now) == 0
    row = rows(svc)["refused-3"]
    assert (row.status, row.attempts) == ("pending", 1)
    assert "451 4.3.0 Try again later" in row.last_error
    del smtp_server.collector.refuse["dep@example.org"]
    assert sender.deliver_due(now + timedelta(minutes=5)) == 1
    assert len(smtp_server.collector.envelopes) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login_with_percent_encoded_credentials(svc):
    seen = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        seen.append((auth_data.login, auth_data.password))
        ok = auth_data.login == b"agency@example.org" and auth_data.password == b"p@ss:w/rd"
        return AuthResult(success=ok, handled=False)

    server = start_server(authenticator=authenticator, auth_require_tls=False, auth_required=True)
    try:
        enqueue(svc, "combined-1")
        wrong = sender_for(svc, f"smtp://agency%40example.org:wrong-secret@{HOST}:{server.port}")
        now = utcnow()
        assert wrong.deliver_due(now) == 0
        row = rows(svc)["combined-1"]
        assert (row.status, row.attempts) == ("pending", 1)  # a set-up problem: retried, not dropped
        assert "535" in row.last_error and "wrong-secret" not in row.last_error

        right = sender_for(svc, f"smtp://agency%40example.org:p%40ss%3Aw%2Frd@{HOST}:{server.port}")
        assert right.deliver_due(now + timedelta(hours=1)) == 1
        assert seen[-1] == (b"agency@example.org", b"p@ss:w/rd")
        assert len(server.collector.envelopes) == 1
    finally:
        server.controller.stop()


def test_crash_between_the_servers_ok_and_our_commit_repeats_the_same_message_id(svc, smtp_server, monkeypatch):
    """The one window SMTP leaves open: the copy that may repeat carries the same Message-ID."""
    row = enqueue(svc, "combined-9")
    url = f"smtp://{HOST}:{smtp_server.port}"
    crashing = sender_for(svc, url)

    def crash(*_args):
        raise KeyboardInterrupt("the process dies before recording 'sent'")

    monkeypatch.setattr(crashing, "_record_sent", crash)
    now = utcnow()
    with pytest.raises(KeyboardInterrupt):
        crashing.deliver_due(now)
    assert len(smtp_server.collector.envelopes) == 1
    restarted = sender_for(svc, url)
    assert restarted.deliver_due(now) == 0  # the crashed sender's lease still holds
    lease = timedelta(seconds=svc.settings.mail_lease_seconds + 1)
    assert restarted.deliver_due(now + lease) == 1
    assert [m["Message-ID"] for m in smtp_server.collector.messages()] == [row.message_id] * 2
    assert rows(svc)["combined-9"].status == "sent"
    assert restarted.deliver_due(now + 2 * lease) == 0


def test_crash_after_claiming_but_before_sending_loses_nothing(svc, smtp_server):
    enqueue(svc, "combined-10")
    url = f"smtp://{HOST}:{smtp_server.port}"
    now = utcnow()
    claimed = sender_for(svc, url)._claim(rows(svc)["combined-10"].id, now)  # ... and then the process dies
    assert claimed is not None
    restarted = sender_for(svc, url)
    assert restarted.deliver_due(now) == 0
    assert restarted.deliver_due(now + timedelta(seconds=svc.settings.mail_lease_seconds + 1)) == 1
    assert len(smtp_server.collector.envelopes) == 1


# -- TLS -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1/localhost, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: TLS delivery not tested (URL parsing is)")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return SimpleNamespace(cert=cert, server_context=context)


def test_smtps_delivers_with_a_trusted_certificate(svc, certificate):
    server = start_server(ssl_context=certificate.server_context)
    try:
        enqueue(svc, "combined-1")
        sender = sender_for(svc, f"smtps://{HOST}:{server.port}", smtp_ca_file=str(certificate.cert))
        assert sender.deliver_due() == 1
        assert len(server.collector.envelopes) == 1
    finally:
        server.controller.stop()


def test_starttls_delivers_with_login(svc, certificate):
    def authenticator(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=(auth_data.login, auth_data.password) == (b"agency", b"s3cret"), handled=False)

    server = start_server(tls_context=certificate.server_context, require_starttls=True,
                          authenticator=authenticator, auth_required=True)
    try:
        enqueue(svc, "combined-1")
        sender = sender_for(svc, f"smtp://agency:s3cret@{HOST}:{server.port}?starttls=1",
                            smtp_ca_file=str(certificate.cert))
        assert sender.deliver_due() == 1
        assert len(server.collector.envelopes) == 1
    finally:
        server.controller.stop()


def test_untrusted_certificate_is_a_retried_failure_not_a_silent_send(svc, certificate):
    server = start_server(ssl_context=certificate.server_context)
    try:
        enqueue(svc, "combined-1")
        assert sender_for(svc, f"smtps://{HOST}:{server.port}").deliver_due() == 0
        row = rows(svc)["combined-1"]
        assert (row.status, row.attempts) == ("pending", 1)
        assert "CERTIFICATE_VERIFY_FAILED" in row.last_error
        assert server.collector.envelopes == []
    finally:
        server.controller.stop()
