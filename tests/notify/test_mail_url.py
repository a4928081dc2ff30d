"""AGENCY_SMTP_URL: every documented form parses, every wrong one is refused with a clear error."""

from __future__ import annotations

import pytest

from agency.config import load_settings
from agency.notify.outbox import MailConfigError, MaildirTransport, SmtpTarget, SmtpTransport, parse_smtp_url, transport_for


@pytest.mark.parametrize("url, expected", [
    ("smtp://127.0.0.1:25", SmtpTarget("127.0.0.1", 25, "none")),
    ("smtp://mail.example.org", SmtpTarget("mail.example.org", 25, "none")),
    ("SMTP://Mail.Example.ORG:2525/", SmtpTarget("mail.example.org", 2525, "none")),
    ("smtp://user:pass@host:587?starttls=1", SmtpTarget("host", 587, "starttls", "user", "pass")),
    ("smtp://host?starttls=true", SmtpTarget("host", 587, "starttls")),
    ("smtp://host:25?starttls=0", SmtpTarget("host", 25, "none")),
    ("smtps://host:465", SmtpTarget("host", 465, "tls")),
    ("smtps://host", SmtpTarget("host", 465, "tls")),
    ("smtps://u@host", SmtpTarget("host", 465, "tls", "u", None)),
    ("smtp://[::1]:2525", SmtpTarget("::1", 2525, "none")),
    # Percent-encoded user and password: @ : / ? # % and spaces survive.
    ("smtp://agency%40example.org:p%40ss%3Aw%2Fo%3Frd%23%25%20x@host:587?starttls=1",
     SmtpTarget("host", 587, "starttls", "agency@example.org", "p@ss:w/o?rd#% x")),
    ("smtp://user:@host", SmtpTarget("host", 25, "none", "user", "")),
])
def test_smtp_urls_parse(url, expected):
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize("url, words", [
    ("http://host", "smtp:// or smtps://"),
    ("host:25", "smtp:// or smtps://"),
    ("smtp://", "no host"),
    ("smtp://host:99999", "not a valid URL"),
    ("smtp://host:port", "not a valid URL"),
    ("smtp://host/path", "path"),
    ("smtp://host#frag", "path"),
    ("smtp://host?tls=1", "unknown option"),
    ("smtp://host?starttls=maybe", "starttls='maybe'"),
    ("smtps://host?starttls=1", "TLS from the start"),
    ("smtp://:secret@host", "password but no user"),
])
def test_bad_smtp_urls_are_refused_clearly(url, words):
    with pytest.raises(MailConfigError, match=words.replace("?", r"\?")):
        parse_smtp_url(url)


def test_errors_never_show_the_password():
    with pytest.raises(MailConfigError) as caught:
        parse_smtp_url("smtp://user:hunter2@host:70000")
    assert "hunter2" not in str(caught.value)
    assert "user:***@host" in str(caught.value)


def test_describe_hides_the_password():
    target = parse_smtp_url("smtp://user:hunter2@host:587?starttls=1")
    assert target.describe() == "smtp://user@host:587?starttls=1"
    assert parse_smtp_url("smtps://[::1]").describe() == "smtps://[::1]:465"
    assert parse_smtp_url("smtp://a%40b.org:x@host").describe() == "smtp://a%40b.org@host:25"


def test_transport_follows_the_setting(tmp_path):
    embedded = load_settings(environ={}, data_dir=tmp_path)
    assert isinstance(transport_for(embedded), MaildirTransport)
    assert transport_for(embedded).folder == tmp_path / "maildir"
    configured = load_settings(environ={"AGENCY_SMTP_URL": "smtps://relay.example.org"})
    transport = transport_for(configured)
    assert isinstance(transport, SmtpTransport)
    assert transport.target == SmtpTarget("relay.example.org", 465, "tls")
