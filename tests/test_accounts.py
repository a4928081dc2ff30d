"""Accounts: hashed passwords, prefix ownership, and the memory of recent successful logins."""

from __future__ import annotations

import pytest

from agency.accounts import AccountError, PasswordCheck, authenticate, create_account
from conftest import add_account


def test_passwords_are_stored_as_salted_argon2_hashes(svc, alice):
    from agency.models import Account

    with svc.db.sessions() as session:
        stored = session.query(Account.password_hash).filter_by(login="alice").scalar()
    assert stored.startswith("$argon2id$") and "alice-password" not in stored


def test_wrong_password_and_unknown_login_are_refused(svc, alice):
    with svc.db.sessions() as session:
        assert authenticate(session, svc.passwords, "alice", "alice-password").login == "alice"
        assert authenticate(session, svc.passwords, "alice", "Alice-password") is None
        assert authenticate(session, svc.passwords, "nobody", "alice-password") is None


def test_a_remembered_success_ends_with_a_password_change():
    check = PasswordCheck(time_cost=1)
    old = check.hash("first-password")
    assert check.verify(old, "first-password")
    assert check.verify(old, "first-password")  # remembered
    new = check.hash("second-password")
    assert not check.verify(new, "first-password")
    assert check.verify(new, "second-password")
    assert not check.verify(old, "second-password")


def test_failures_are_never_remembered(monkeypatch):
    check = PasswordCheck(time_cost=1)
    stored = check.hash("right-password")
    calls = []
    real = check._slow_verify
    monkeypatch.setattr(check, "_slow_verify", lambda h, p: calls.append(p) or real(h, p))
    for _ in range(3):
        assert not check.verify(stored, "wrong-password")
    assert calls == ["wrong-password"] * 3
    assert check.verify(stored, "right-password") and check.verify(stored, "right-password")
    assert calls.count("right-password") == 1


def test_remembering_expires(monkeypatch):
    check = PasswordCheck(time_cost=1, remember_seconds=0)
    stored = check.hash("right-password")
    calls = []
    real = check._slow_verify
    monkeypatch.setattr(check, "_slow_verify", lambda h, p: calls.append(p) or real(h, p))
    check.verify(stored, "right-password")
    check.verify(stored, "right-password")
    assert len(calls) == 2


@pytest.mark.parametrize("login, email, password, prefixes, words", [
    ("bad login!", "a@example.org", "long-enough", ["10.1"], "login"),
    ("press", "not-an-email", "long-enough", ["10.1"], "email"),
    ("press", "a@example.org", "short", ["10.1"], "8 characters"),
    ("press", "a@example.org", "long-enough", ["11.1"], "prefix"),
    ("alice", "a@example.org", "long-enough", ["10.1"], "exists"),
])
def test_account_creation_refuses_bad_input(svc, alice, login, email, password, prefixes, words):
    with pytest.raises(AccountError, match=words), svc.db.transaction() as session:
        create_account(session, svc.passwords, login, email, password, prefixes)


def test_a_prefix_belongs_to_one_account(svc, alice):
    with pytest.raises(AccountError, match="another account"):
        add_account(svc, "carol", "carol-password", "c@example.org", ["10.5555"])
