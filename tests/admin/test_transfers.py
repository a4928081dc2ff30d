"""Transfers between registrants (DOI Handbook 9.1.5): API, CLI, refusals, and a transfer racing a deposit."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import select

from admin_cli_env import cli_env  # noqa: F401 (fixture)
from agency.handles.values import AdminRecord
from agency.admin import transfers
from agency.admin.accounts import disable
from agency.admin.audit import Actor, events
from agency.admin.titles import titles_of
from agency.cli import main
from agency.handles.store import find_handle, handle_values, resolve_url
from agency.models import OutboxMessage, Prefix
from batchgen import Article, deposit_xml
from conftest import basic_headers

ALICE_H = basic_headers("alice", "alice-password", "application/json")
BOB_H = basic_headers("bob", "bob-password", "application/json")
OPS = Actor.operator("ops")


def _open(client, body, headers=ALICE_H):
    return client.post("/v1/transfers", data=json.dumps(body), headers=headers)


def _consent_both(client, transfer_id):
    for headers in (ALICE_H, BOB_H):
        response = client.post(f"/v1/transfers/{transfer_id}/consent", headers=headers)
        assert response.status_code == 200, response.get_json()
    return response.get_json()


def _complete(svc, transfer_id):
    with svc.db.transaction() as session:
        return transfers.complete(session, OPS, transfer_id)


def test_a_transfer_moves_dois_and_the_right_to_update_them(svc, client, deposit, bob):
    deposit(deposit_xml([Article("10.5555/t.1"), Article("10.5555/t.2"), Article("10.5555/t.3")]))
    response = _open(client, {"to": "bob", "dois": ["10.5555/t.1", "10.5555/T.2"]})
    assert response.status_code == 201
    opened = response.get_json()
    assert (opened["status"], opened["dois"], opened["from"], opened["to"]) == ("open", 2, "alice", "bob")
    assert client.get(response.headers["Location"], headers=BOB_H).get_json()["transfer_id"] == opened["transfer_id"]
    tid = opened["transfer_id"]
    with svc.db.sessions() as session:  # nothing changes before completion
        assert find_handle(session, "10.5555/t.1").account_id != bob.id
    body = _consent_both(client, tid)
    assert body["status"] == "open" and body["consents"]["from"] and body["consents"]["to"]
    done = _complete(svc, tid)
    assert (done.status, done.dois) == ("completed", 2)
    with svc.db.sessions() as session:
        assert find_handle(session, "10.5555/t.1").account_id == bob.id
        assert find_handle(session, "10.5555/t.3").account_id != bob.id
        admin = [v for v in handle_values(session, "10.5555/t.1") if v.type == "HS_ADMIN"][0]
        assert AdminRecord.decode(admin.data).handle == "0.NA/10.6666"
        admin = [v for v in handle_values(session, "10.5555/t.3") if v.type == "HS_ADMIN"][0]
        assert AdminRecord.decode(admin.data).handle == "0.NA/10.5555"
        mail = session.scalars(select(OutboxMessage).order_by(OutboxMessage.key)).all()
        assert [m.recipients for m in mail if m.key.startswith("transfer-")] == ["alice@example.org",
                                                                                 "bob@example.org"]
        assert "2 DOI(s) (dois) moved from alice to bob" in mail[0].text_body
    # B updates with precedence continuing from the stored version; A no longer may.
    _, records = deposit(deposit_xml([Article("10.5555/t.1", url="https://example.org/bob")],
                                     timestamp="20240101000000", issn="2049-3630"), "bob", "bob-password")
    assert records[0]["status"] == "Failure" and "less or equal" in records[0]["msg"]
    _, records = deposit(deposit_xml([Article("10.5555/t.1", url="https://example.org/bob")],
                                     timestamp="20250101000000", issn="2049-3630"), "bob", "bob-password")
    assert records[0]["msg"] == "Successfully updated"
    _, records = deposit(deposit_xml([Article("10.5555/t.2", url="https://example.org/alice")],
                                     timestamp="20260101000000"))
    assert records[0]["status"] == "Failure" and "transferred to another account" in records[0]["msg"]
    _, records = deposit(deposit_xml([Article("10.5555/t.3", url="https://example.org/alice")],
                                     timestamp="20260101000000"))
    assert records[0]["msg"] == "Successfully updated"
    with svc.db.sessions() as session:
        assert resolve_url(session, "10.5555/t.1") == "https://example.org/bob"
        assert resolve_url(session, "10.5555/t.2") == "https://example.org/articles/t.2"
        assert [e.action for e in events(session, subject=f"transfer:{tid}", account_id=bob.id)] == [
            "transfer.open", "transfer.consent", "transfer.consent", "transfer.complete"]
    audit = client.get("/v1/audit", headers=BOB_H).get_json()["events"]
    assert [e["action"] for e in audit if e["subject"] == f"transfer:{tid}"][-1] == "transfer.complete"
    assert {e["action"] for e in audit} == {"transfer.open", "transfer.consent", "transfer.complete", "title.create"}
    listing = client.get("/v1/transfers", headers=ALICE_H).get_json()["transfers"]
    assert [(t["transfer_id"], t["status"]) for t in listing] == [(tid, "completed")]


def test_refusals_say_why(svc, client, deposit, bob):
    from conftest import add_account

    add_account(svc, "carol", "carol-password", "carol@example.org", ["10.7777"])
    deposit(deposit_xml([Article("10.5555/r.1"), Article("10.5555/r.2")]))
    deposit(deposit_xml([Article("10.6666/bobs")], issn="2049-3630"), "bob", "bob-password")

    def refused(body, status, text, headers=ALICE_H):
        response = _open(client, body, headers)
        assert response.status_code == status, response.get_json()
        assert text in response.get_json()["error"]["message"]

    refused({"to": "bob", "dois": ["10.6666/bobs"]}, 403, "DOI 10.6666/bobs is not owned by alice")
    refused({"to": "bob", "dois": ["10.5555/nothing"]}, 404, "DOI 10.5555/nothing is not registered here")
    refused({"to": "bob", "dois": []}, 400, "the set of DOIs is empty")
    refused({"to": "bob"}, 400, 'exactly one of "dois", "title" or "prefix"')
    refused({"to": "nobody", "dois": ["10.5555/r.1"]}, 404, "no account 'nobody'")
    refused({"to": "alice", "dois": ["10.5555/r.1"]}, 400, "two different accounts")
    refused({"to": "bob", "from": "carol", "dois": ["10.5555/r.1"]}, 403, "it is a party of")
    refused({"to": "bob", "dois": ["x"] * (transfers.MAX_LISTED_DOIS + 1)}, 413, "at most 10000 DOIs")
    tid = _open(client, {"to": "bob", "dois": ["10.5555/r.1"]}).get_json()["transfer_id"]
    refused({"to": "carol", "dois": ["10.5555/r.2", "10.5555/r.1"]}, 409, f"is in open transfer {tid} already")
    # Consents: only the parties, once each; completion needs both; a withdrawn transfer stays so.
    response = client.post(f"/v1/transfers/{tid}/consent", headers=basic_headers("carol", "carol-password"))
    assert response.status_code == 403 and "carol is not a party" in response.get_json()["error"]["message"]
    assert client.get(f"/v1/transfers/{tid}", headers=basic_headers("carol", "carol-password")).status_code == 404
    assert client.post(f"/v1/transfers/{tid}/consent", headers=ALICE_H).status_code == 200
    response = client.post(f"/v1/transfers/{tid}/consent", headers=ALICE_H)
    assert response.status_code == 409 and "has consented to transfer" in response.get_json()["error"]["message"]
    with pytest.raises(transfers.TransferError, match="waits for the consent of: to"):
        _complete(svc, tid)
    assert client.post(f"/v1/transfers/{tid}/withdraw", headers=BOB_H).get_json()["status"] == "withdrawn"
    with pytest.raises(transfers.TransferError, match="is withdrawn: it cannot be completed"):
        _complete(svc, tid)
    response = client.post(f"/v1/transfers/{tid}/consent", headers=BOB_H)
    assert response.status_code == 409 and "is withdrawn" in response.get_json()["error"]["message"]
    # Withdrawn, the DOIs are free for another transfer; a disabled receiver is refused.
    with svc.db.transaction() as session:
        disable(session, OPS, "carol")
    refused({"to": "carol", "dois": ["10.5555/r.1"]}, 409, "account 'carol' is disabled")
    assert _open(client, {"to": "bob", "dois": ["10.5555/r.1"]}).status_code == 201
    with svc.db.sessions() as session:
        assert find_handle(session, "10.5555/r.1").account_id != bob.id


def test_with_transfers_auto_the_second_consent_completes(svc, client, deposit, bob):
    svc.settings = svc.settings.replace(transfers_auto=True)
    deposit(deposit_xml([Article("10.5555/a.1")]))
    tid = _open(client, {"to": "bob", "from": "alice", "dois": ["10.5555/a.1"]}, BOB_H).get_json()["transfer_id"]
    assert _consent_both(client, tid)["status"] == "completed"
    with svc.db.sessions() as session:
        assert find_handle(session, "10.5555/a.1").account_id == bob.id
        [event] = [e for e in events(session, subject=f"transfer:{tid}", account_id=bob.id)
                   if e.action == "transfer.complete"]
        assert event.actor == "system" and "AGENCY_TRANSFERS_AUTO" in event.reason


def test_a_title_transfer_moves_its_dois_and_its_title_record(svc, client, deposit, bob):
    deposit(deposit_xml([Article("10.5555/j.1"), Article("10.5555/j.2")], issn="1234-5679"))
    deposit(deposit_xml([Article("10.5555/other.1")], issn="2049-3630", journal="Other"))
    tid = _open(client, {"to": "bob", "title": "12345679"}).get_json()["transfer_id"]
    _consent_both(client, tid)
    assert _complete(svc, tid).dois == 2
    with svc.db.sessions() as session:
        owners = {tuple(i): o for _r, i, o in titles_of(session)}
        assert owners == {("1234-5679",): "bob", ("2049-3630",): "alice"}
        assert find_handle(session, "10.5555/other.1").account_id != bob.id
    _, records = deposit(deposit_xml([Article("10.6666/j.3")], issn="1234-5679"), "bob", "bob-password")
    assert records[0]["status"] == "Success"
    _, records = deposit(deposit_xml([Article("10.5555/j.4")], issn="1234-5679"))
    assert records[0]["status"] == "Failure" and "is owned by publisher: bob" in records[0]["msg"]


def test_a_prefix_transfer_through_the_cli(svc, deposit, bob, cli_env, capsys):
    deposit(deposit_xml([Article("10.32013/p.1"), Article("10.32013/p.2")], issn="2049-3630"))
    assert main(["transfers", "open", "--from", "alice", "--to", "bob", "--prefix", "10.32013"]) == 0
    out = capsys.readouterr().out
    assert "transfer 1 open: 2 DOI(s) (prefix 10.32013) alice -> bob; consents: none yet" in out
    assert main(["transfers", "complete", "1"]) == 2
    assert "waits for the consent of: from, to" in capsys.readouterr().err
    assert main(["transfers", "consent", "1", "--account", "carol"]) == 2
    assert "carol is not a party" in capsys.readouterr().err
    for party in ("alice", "bob"):
        assert main(["transfers", "consent", "1", "--account", party]) == 0
    assert main(["transfers", "complete", "1", "--reason", "ticket 9"]) == 0
    assert "transfer 1 completed: 2 DOI(s)" in capsys.readouterr().out
    assert main(["transfers", "withdraw", "1"]) == 2
    assert "is completed already" in capsys.readouterr().err
    assert main(["transfers", "list"]) == 0
    assert "transfer 1 completed" in capsys.readouterr().out
    with svc.db.sessions() as session:
        assert session.get(Prefix, "10.32013").account_id == bob.id
        assert {find_handle(session, f"10.32013/p.{i}").account_id for i in (1, 2)} == {bob.id}
        trail = [(e.actor, e.action) for e in events(session, subject="transfer:1", account_id=bob.id)]
        assert _title_owners(session) == {("2049-3630",): "bob"}  # the journal's DOIs all went: its title too
    assert trail[0] == ("operator:jo", "transfer.open") and trail[-1] == ("operator:jo", "transfer.complete")
    _, records = deposit(deposit_xml([Article("10.32013/p.3")], issn="0317-8471"))
    assert records[0]["msg"] == "User not allowed to add records for prefix: 10.32013"


def test_a_transfer_racing_a_deposit_never_leaves_half(svc, client, deposit, bob):
    """The deposit's records land before the transfer (and move with it) or fail after it, each whole."""
    dois = [f"10.5555/race.{i}" for i in range(300)]
    deposit(deposit_xml([Article(d) for d in dois], timestamp="1"))
    tid = _open(client, {"to": "bob", "dois": dois}).get_json()["transfer_id"]
    _consent_both(client, tid)
    svc.settings = svc.settings.replace(chunk_records=50)
    svc.worker.runners["deposit"].settings = svc.settings
    response = client.post("/v1/deposits", data=deposit_xml([Article(d, url=f"https://example.org/new/{d}")
                                                              for d in dois], timestamp="2"),
                           headers=basic_headers("alice", "alice-password"))
    assert response.status_code == 202
    worker = threading.Thread(target=svc.worker.run_until_idle)
    worker.start()
    _complete(svc, tid)
    worker.join(timeout=120)
    body = client.get(response.headers["Location"], headers=basic_headers("alice", "alice-password")).get_json()
    assert body["status"] == "completed"
    with svc.db.sessions() as session:
        for record in body["records"]:
            handle = find_handle(session, record["doi"])
            assert handle.account_id == bob.id
            url = resolve_url(session, record["doi"])
            if record["status"] == "Success":
                assert url.startswith("https://example.org/new/") and handle.version.endswith("2")
            else:  # after the transfer, which moved the journal's title record too (all its DOIs went)
                assert ("transferred to another account" in record["msg"]
                        or "is owned by publisher: bob" in record["msg"]), record["msg"]
                assert not url.startswith("https://example.org/new/") and handle.version.endswith("1")


def _title_owners(session) -> dict[tuple[str, ...], str]:
    return {tuple(identifiers): login for _record, identifiers, login in titles_of(session)}


def test_a_doi_list_covering_a_whole_journal_moves_its_title_record(svc, client, deposit, bob):
    deposit(deposit_xml([Article("10.5555/w.1"), Article("10.5555/w.2")], issn="1234-5679"))
    deposit(deposit_xml([Article("10.5555/o.1")], issn="2049-3630", journal="Other"))
    tid = _open(client, {"to": "bob", "dois": ["10.5555/w.1", "10.5555/w.2"]}).get_json()["transfer_id"]
    _consent_both(client, tid)
    _complete(svc, tid)
    with svc.db.sessions() as session:
        assert _title_owners(session) == {("1234-5679",): "bob", ("2049-3630",): "alice"}
        moved = [e for e in events(session, account_id=bob.id) if e.action == "title.transfer"]
        assert [(e.before, e.after["owner"], e.after["identifiers"], e.after["transfer_id"]) for e in moved] == [
            ({"owner": "alice"}, "bob", ["1234-5679"], tid)]
        assert [e.action for e in events(session, account_id=1) if e.action == "title.transfer"] == ["title.transfer"]
        [complete] = [e for e in events(session, subject=f"transfer:{tid}", account_id=bob.id)
                      if e.action == "transfer.complete"]
        assert [t["identifiers"] for t in complete.after["titles_moved"]] == [["1234-5679"]]
        assert "titles_kept" not in complete.after
        mail = session.scalars(select(OutboxMessage).where(OutboxMessage.key == f"transfer-{tid}-bob")).one()
        assert "Title record moved to bob: Journal of Tests (1234-5679)" in mail.text_body
    # Bob now owns the journal: his new DOIs may use its ISSN, and Alice's may not.
    _, records = deposit(deposit_xml([Article("10.6666/w.3")], issn="1234-5679"), "bob", "bob-password")
    assert records[0]["status"] == "Success", records
    _, records = deposit(deposit_xml([Article("10.5555/w.4")], issn="1234-5679"))
    assert records[0]["status"] == "Failure" and "is owned by publisher: bob" in records[0]["msg"]


def test_a_partial_transfer_keeps_the_title_and_lets_the_receiver_update_its_dois(svc, client, deposit, bob):
    deposit(deposit_xml([Article("10.5555/p.1"), Article("10.5555/p.2"), Article("10.5555/p.3")], issn="1234-5679"))
    tid = _open(client, {"to": "bob", "dois": ["10.5555/p.1"]}).get_json()["transfer_id"]
    _consent_both(client, tid)
    _complete(svc, tid)
    with svc.db.sessions() as session:
        assert _title_owners(session) == {("1234-5679",): "alice"}
        assert not [e for e in events(session) if e.action == "title.transfer"]
        [complete] = [e for e in events(session, subject=f"transfer:{tid}", account_id=bob.id)
                      if e.action == "transfer.complete"]
        assert complete.after["titles_moved"] == []
        assert [(t["identifiers"], t["dois_left"]) for t in complete.after["titles_kept"]] == [(["1234-5679"], 2)]
        mail = session.scalars(select(OutboxMessage).where(OutboxMessage.key == f"transfer-{tid}-bob")).one()
        assert "Title record kept by alice, who still has 2 DOI(s) of it" in mail.text_body
    # Bob updates the DOI he received, under the journal's ISSN: accepted, with a Warning naming the owner.
    _, records = deposit(deposit_xml([Article("10.5555/p.1", url="https://bob.example.org/p.1")],
                                     timestamp="20250101000000", issn="1234-5679"), "bob", "bob-password")
    assert records[0]["status"] == "Warning", records
    assert "this DOI was transferred to you" in records[0]["msg"] and "stays alice's" in records[0]["msg"]
    with svc.db.sessions() as session:
        assert resolve_url(session, "10.5555/p.1") == "https://bob.example.org/p.1"
    # ...but a DOI of his own under Alice's journal is still refused, as is one he was not given.
    _, records = deposit(deposit_xml([Article("10.6666/p.9")], issn="1234-5679"), "bob", "bob-password")
    assert records[0]["status"] == "Failure" and "is owned by publisher: alice" in records[0]["msg"]
    _, records = deposit(deposit_xml([Article("10.5555/p.2", url="https://bob.example.org/p.2")],
                                     timestamp="20250101000000", issn="1234-5679"), "bob", "bob-password")
    assert records[0]["status"] == "Failure"


def test_a_prefix_transfer_moves_the_titles_wholly_under_it(svc, client, deposit, bob):
    deposit(deposit_xml([Article("10.32013/q.1"), Article("10.32013/q.2")], issn="2049-3630", journal="Moving"))
    deposit(deposit_xml([Article("10.32013/s.1")], issn="0317-8471", journal="Shared"))
    deposit(deposit_xml([Article("10.5555/s.2")], issn="0317-8471", journal="Shared"))
    tid = _open(client, {"to": "bob", "prefix": "10.32013"}).get_json()["transfer_id"]
    _consent_both(client, tid)
    _complete(svc, tid)
    with svc.db.sessions() as session:
        assert _title_owners(session) == {("2049-3630",): "bob", ("0317-8471",): "alice"}
        [complete] = [e for e in events(session, subject=f"transfer:{tid}", account_id=bob.id)
                      if e.action == "transfer.complete"]
        assert [t["title"] for t in complete.after["titles_moved"]] == ["Moving"]
        assert [(t["title"], t["dois_left"]) for t in complete.after["titles_kept"]] == [("Shared", 1)]
