"""The audit trail commits and rolls back with the change it records."""

from __future__ import annotations

import pytest

from agency.admin.audit import Actor, record_event, events


def test_an_event_commits_with_its_change(svc, alice):
    with svc.db.transaction() as session:
        record_event(session, Actor.operator("ops"), "account.set-email", "account:alice", account_id=alice.id,
                     before={"email": "a@example.org"}, after={"email": "b@example.org"}, reason="ticket 1")
    with svc.db.sessions() as session:
        [event] = list(events(session, subject="account:alice"))
        assert (event.actor, event.action, event.before, event.after, event.reason) == (
            "operator:ops", "account.set-email", {"email": "a@example.org"}, {"email": "b@example.org"}, "ticket 1")
        assert list(events(session, account_id=alice.id)) == [event]
        assert list(events(session, subject="account:")) == [event]
        assert list(events(session, subject="account:bob")) == []


def test_an_event_rolls_back_with_its_change(svc, alice):
    with pytest.raises(RuntimeError):
        with svc.db.transaction() as session:
            record_event(session, Actor.account("alice"), "transfer.open", "transfer:1", account_id=alice.id)
            raise RuntimeError("the change failed")
    with svc.db.sessions() as session:
        assert list(events(session)) == []


def test_an_overlong_reason_is_refused(svc):
    with svc.db.transaction() as session, pytest.raises(ValueError, match="at most 2000"):
        record_event(session, Actor.operator("ops"), "x", "y", reason="r" * 2001)


def test_operator_name_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("AGENCY_OPERATOR", "jo")
    assert str(Actor.operator()) == "operator:jo"
    assert str(Actor.operator("sam")) == "operator:sam"
