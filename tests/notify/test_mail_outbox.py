"""enqueue_mail: one row per key, in the caller's transaction; bad input is refused or recorded, never lost."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from agency.notify.outbox import clean_address, enqueue_mail, list_messages, recipients_for
from agency.models import OutboxMessage


def outbox_rows(svc) -> list[OutboxMessage]:
    with svc.db.sessions() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def enqueue(svc, **kwargs):
    fields = dict(key="combined-1", recipients=["dep@example.org"], subject="Batch 1", text="Hello")
    fields.update(kwargs)
    with svc.db.transaction() as session:
        return enqueue_mail(session, **fields)


def test_enqueue_stores_everything_given(svc):
    row = enqueue(svc, html="<p>Hello</p>", attachment_path="alice/2026/01/1/combined.xml",
                  attachment_name="combined-1.xml")
    [stored] = outbox_rows(svc)
    assert stored.id == row.id
    assert (stored.key, stored.status, stored.attempts) == ("combined-1", "pending", 0)
    assert stored.recipient_list == ["dep@example.org"]
    assert (stored.subject, stored.text_body, stored.html_body) == ("Batch 1", "Hello", "<p>Hello</p>")
    assert (stored.attachment_path, stored.attachment_name, stored.attachment_type) == (
        "alice/2026/01/1/combined.xml", "combined-1.xml", "application/xml")
    assert stored.message_id.startswith("<") and stored.message_id.endswith(">") and "@" in stored.message_id
    assert stored.next_attempt_at == stored.created_at  # due at once
    assert stored.last_error is None


def test_same_key_twice_adds_nothing(svc):
    assert enqueue(svc) is not None
    assert enqueue(svc, subject="Something else") is None
    with svc.db.transaction() as session:  # also within one transaction
        assert enqueue_mail(session, key="k2", recipients=["a@example.org"], subject="s", text="t") is not None
        assert enqueue_mail(session, key="k2", recipients=["a@example.org"], subject="s", text="t") is None
    rows = outbox_rows(svc)
    assert [r.key for r in rows] == ["combined-1", "k2"]
    assert rows[0].subject == "Batch 1"


def test_mail_is_only_kept_when_its_cause_commits(svc):
    with pytest.raises(RuntimeError):
        with svc.db.transaction() as session:
            enqueue_mail(session, key="combined-7", recipients=["a@example.org"], subject="s", text="t")
            raise RuntimeError("the cause failed")
    assert outbox_rows(svc) == []
    assert enqueue(svc, key="combined-7") is not None  # the key is free again


def test_message_ids_are_unique_and_stored(svc):
    first, second = enqueue(svc, key="a"), enqueue(svc, key="b")
    assert first.message_id != second.message_id
    assert {r.message_id for r in outbox_rows(svc)} == {first.message_id, second.message_id}


def test_unusable_recipients_are_left_out_and_noted(svc):
    row = enqueue(svc, recipients=["dep@example.org", "not an address", "DEP@Example.org ", "dep@example.org"])
    assert row.status == "pending"
    assert row.recipient_list == ["dep@example.org", "DEP@example.org"]
    assert "'not an address'" in row.last_error


def test_no_usable_recipient_keeps_a_visible_dead_message(svc):
    row = enqueue(svc, recipients=["", "nobody", "a@b@c"])
    assert row.status == "dead"
    assert "no usable recipient" in row.last_error
    assert [r.id for r in list_messages(svc.db)] == [row.id]


def test_header_injection_and_nul_are_neutralised(svc):
    row = enqueue(svc, subject="Batch\r\nBcc: victim@example.org", text="a\x00b", html="<p>\x00</p>")
    assert row.subject == "Batch Bcc: victim@example.org"
    assert row.text_body == "a\ufffdb" and row.html_body == "<p>\ufffd</p>"
    assert enqueue(svc, key="empty", subject="  ").subject == "(no subject)"


@pytest.mark.parametrize("kwargs, words", [
    ({"key": ""}, "key must be a non-empty"),
    ({"key": "x" * 256}, "at most 255"),
    ({"key": "a\nb"}, "printable"),
    ({"attachment_path": "/etc/passwd"}, "relative to the batch folder"),
    ({"attachment_path": "alice/../../etc/passwd"}, "relative to the batch folder"),
    ({"attachment_path": "alice/log.xml", "attachment_type": "xml"}, "not a MIME type"),
])
def test_programming_errors_are_refused_before_anything_is_stored(svc, kwargs, words):
    with pytest.raises(ValueError, match=words):
        enqueue(svc, **kwargs)
    assert outbox_rows(svc) == []


def test_attachment_name_defaults_to_the_file_name_and_is_cleaned(svc):
    row = enqueue(svc, attachment_path="alice\\2026\\01\\3\\log.xml")
    assert (row.attachment_path, row.attachment_name) == ("alice/2026/01/3/log.xml", "log.xml")
    row = enqueue(svc, key="k9", attachment_path="a/log.xml", attachment_name='../"evil"\r\n.xml')
    assert row.attachment_name == "..evil.xml"


@pytest.mark.parametrize("raw, expected", [
    ("dep@example.org", "dep@example.org"),
    ("  dep@Example.ORG ", "dep@example.org"),
    ("first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk"),
    ("dep@bücher.example", "dep@xn--bcher-kva.example"),
    ("Dep <dep@example.org>", None),
    ("a@example.org, b@example.org", None),
    ("dep@example.org\r\nBcc: x@example.org", None),
    ("dep", None),
    ("@example.org", None),
    ("dep@", None),
    (".dep@example.org", None),
    ("de..p@example.org", None),
    ("dep@example..org", None),
    ("dép@example.org", None),
    (None, None),
])
def test_clean_address(raw, expected):
    assert clean_address(raw) == expected


def test_recipients_fall_back_to_the_account():
    assert recipients_for("dep@example.org", "acct@example.org") == ["dep@example.org"]
    assert recipients_for(None, "acct@example.org") == ["acct@example.org"]
    assert recipients_for("not an address", "acct@example.org") == ["acct@example.org"]
    assert recipients_for(None, None) == []


def test_count_stays_one_per_key_across_many_attempts(svc):
    for _ in range(5):
        enqueue(svc, key="refused-3")
    with svc.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_concurrent_enqueues_of_one_key_keep_one_row(svc):
    import threading

    results = []
    with svc.db.transaction() as session:
        assert enqueue_mail(session, key="combined-5", recipients=["a@example.org"], subject="s", text="t")
        other = threading.Thread(target=lambda: results.append(enqueue(svc, key="combined-5")))
        other.start()
        other.join(0.3)  # the other transaction now waits on ours (or has not started yet)
    other.join(60)
    assert results == [None]
    assert [r.key for r in outbox_rows(svc)] == ["combined-5"]
