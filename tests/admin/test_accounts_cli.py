"""`agency accounts list|show|passwd|disable|enable|set-email`, `agency prefixes ...`, `agency audit`."""

from __future__ import annotations

import io

from sqlalchemy import select

from admin_cli_env import cli_env  # noqa: F401 (fixture)
from agency.accounts import authenticate
from agency.admin.audit import events
from agency.cli import main
from agency.models import Account, Prefix
from batchgen import deposit_xml, many


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_and_show_describe_accounts(svc, alice, bob, cli_env, capsys, deposit):
    deposit(deposit_xml(many("10.5555", 2)))
    code, out, _ = run(capsys, "accounts", "list")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == ["alice", "bob"]
    assert "prefixes 10.32013,10.5555; 2 DOI(s)" in out
    code, out, _ = run(capsys, "accounts", "show", "bob")
    assert code == 0 and "email: bob@example.org" in out and "state: enabled" in out and "prefixes: 10.6666" in out
    code, _, err = run(capsys, "accounts", "show", "nobody")
    assert code == 2 and "no account 'nobody'" in err


def test_set_email_and_passwd_print_and_audit_the_change(svc, alice, cli_env, capsys, monkeypatch):
    code, out, _ = run(capsys, "accounts", "set-email", "alice", "new@example.org", "--reason", "ticket 7")
    assert code == 0
    assert "account.set-email account:alice: email=alice@example.org -> email=new@example.org" in out
    monkeypatch.setattr("sys.stdin", io.StringIO("a brand new password\n"))
    code, out, _ = run(capsys, "accounts", "passwd", "alice")
    assert code == 0 and "account.passwd account:alice: - -> password=changed" in out
    with svc.db.sessions() as session:
        assert authenticate(session, svc.passwords, "alice", "a brand new password") is not None
        assert authenticate(session, svc.passwords, "alice", "alice-password") is None
        trail = [(e.actor, e.action, e.reason) for e in events(session, subject="account:alice")]
    assert trail == [("operator:jo", "account.set-email", "ticket 7"), ("operator:jo", "account.passwd", None)]
    code, _, err = run(capsys, "accounts", "set-email", "alice", "not-an-address")
    assert code == 2 and "is not an email address" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    code, _, err = run(capsys, "accounts", "passwd", "alice")
    assert code == 2 and "at least 8 characters" in err


def test_disable_and_enable_are_audited_and_refused_twice(svc, alice, cli_env, capsys):
    code, out, _ = run(capsys, "accounts", "disable", "alice", "--reason", "unpaid")
    assert code == 0 and "account.disable account:alice: state=enabled -> state=disabled" in out
    code, _, err = run(capsys, "accounts", "disable", "alice")
    assert code == 2 and "disabled already" in err
    code, out, _ = run(capsys, "accounts", "show", "alice")
    assert "state: disabled since" in out
    code, out, _ = run(capsys, "accounts", "enable", "alice")
    assert code == 0 and "state=disabled -> state=enabled" in out
    code, _, err = run(capsys, "accounts", "enable", "alice")
    assert code == 2 and "is not disabled" in err
    code, out, _ = run(capsys, "audit", "--subject", "account:alice")
    assert [line.split()[3] for line in out.splitlines()] == ["account.disable", "account.enable"]
    assert "reason=unpaid" in out


def test_prefixes_have_one_owner_and_are_not_removed_while_they_have_dois(svc, alice, bob, cli_env, capsys,
                                                                           deposit):
    code, out, _ = run(capsys, "prefixes", "add", "10.7777", "--account", "bob")
    assert code == 0 and "prefix.add prefix:10.7777: - -> owner=bob" in out
    code, _, err = run(capsys, "prefixes", "add", "10.7777", "--account", "alice")
    assert code == 2 and "belongs to account 'bob' already" in err
    code, _, err = run(capsys, "prefixes", "add", "11.1", "--account", "alice")
    assert code == 2 and "is not a DOI prefix" in err
    deposit(deposit_xml(many("10.5555", 3)))
    code, _, err = run(capsys, "prefixes", "remove", "10.5555")
    assert code == 2 and "prefix 10.5555 still has 3 DOI(s): refused" in err
    code, out, _ = run(capsys, "prefixes", "remove", "10.7777")
    assert code == 0 and "prefix.remove prefix:10.7777: owner=bob -> -" in out
    code, out, _ = run(capsys, "prefixes", "list")
    assert [line.split()[0] for line in out.splitlines()] == ["10.32013", "10.5555", "10.6666"]
    assert "10.5555          owner alice                    3 DOI(s)" in out
    with svc.db.sessions() as session:
        assert session.get(Prefix, "10.7777") is None
        assert session.get(Prefix, "10.5555").account_id == alice.id
    code, out, _ = run(capsys, "audit", "--subject", "prefix:")
    assert [line.split()[3] for line in out.splitlines()] == ["prefix.add", "prefix.remove"]


def test_accounts_create_is_audited_and_audit_since_filters(svc, cli_env, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("long enough password\n"))
    assert main(["accounts", "create", "press", "--email", "ops@press.example", "--prefix", "10.8888"]) == 0
    capsys.readouterr()
    code, out, _ = run(capsys, "audit")
    assert "operator:jo account.create account:press" in out and "'prefixes': ['10.8888']" in out
    code, out, _ = run(capsys, "audit", "--since", "2999-01-01")
    assert out.strip() == "no audit events"
    with svc.db.sessions() as session:
        assert session.scalar(select(Account.login)) == "press"
