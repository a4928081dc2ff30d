"""`agency mail send|list|retry`: what an operator runs to see and push the outbox."""

from __future__ import annotations

import pytest

from agency.cli import main
from agency.notify.outbox import enqueue_mail


@pytest.fixture
def environment(cli_environment, monkeypatch):
    monkeypatch.delenv("AGENCY_SMTP_URL", raising=False)
    return cli_environment


def enqueue(svc, key, recipients=("dep@example.org",)):
    with svc.db.transaction() as session:
        return enqueue_mail(session, key=key, recipients=list(recipients), subject=f"About {key}", text="t")


def test_list_send_and_retry(environment, capsys):
    svc = environment
    enqueue(svc, "combined-1")
    enqueue(svc, "refused-2", recipients=["broken address"])
    assert main(["mail", "list"]) == 0
    listing = capsys.readouterr().out
    assert "#1 pending attempts=0" in listing and "key=combined-1" in listing
    assert "to: dep@example.org  subject: About combined-1" in listing
    assert "#2 dead" in listing and "no usable recipient" in listing

    assert main(["mail", "send"]) == 0
    assert "delivered 1 via maildir" in capsys.readouterr().out
    assert len(list((svc.settings.maildir / "new").iterdir())) == 1

    assert main(["mail", "list", "--status", "sent"]) == 0
    assert "#1 sent attempts=1" in capsys.readouterr().out
    assert main(["mail", "list", "--status", "pending"]) == 0
    assert "no pending messages" in capsys.readouterr().out


def test_retry_needs_ids_or_all_dead(environment, capsys):
    assert main(["mail", "retry"]) == 2
    assert "give message ids, or --all-dead" in capsys.readouterr().err


def test_retry_revives_dead_messages(environment, capsys, monkeypatch):
    svc = environment
    enqueue(svc, "combined-1")
    monkeypatch.setenv("AGENCY_SMTP_URL", "smtp://127.0.0.1:1")  # nothing listens: refused at once
    monkeypatch.setenv("AGENCY_MAIL_MAX_ATTEMPTS", "1")
    assert main(["mail", "send"]) == 0
    assert "delivered 0 via smtp://127.0.0.1:1; 0 pending, 1 dead" in capsys.readouterr().out
    monkeypatch.delenv("AGENCY_SMTP_URL")
    assert main(["mail", "retry", "1"]) == 0
    assert "1 dead message(s) will be tried again" in capsys.readouterr().out
    assert main(["mail", "send"]) == 0
    assert "delivered 1 via maildir" in capsys.readouterr().out


def test_a_wrong_smtp_url_is_a_clear_error(environment, capsys, monkeypatch):
    monkeypatch.setenv("AGENCY_SMTP_URL", "smtp://agency:hunter2@mail.example.org:99999")
    assert main(["mail", "send"]) == 2
    err = capsys.readouterr().err
    assert "AGENCY_SMTP_URL" in err and "Port out of range" in err and "hunter2" not in err
