"""A disabled account authenticates nowhere, and its queued submissions wait for it, not lost."""

from __future__ import annotations

from agency.admin.accounts import disable, enable
from agency.admin.audit import Actor
from agency.models import Submission
from batchgen import deposit_xml, many
from conftest import basic_headers


def _set(svc, change, login="alice"):
    with svc.db.transaction() as session:
        change(session, Actor.operator("ops"), login)


def test_a_disabled_account_is_refused_by_the_api_the_servlet_and_queries(svc, client, alice):
    _set(svc, disable)
    headers = basic_headers("alice", "alice-password")
    assert client.post("/v1/deposits", data=deposit_xml(many("10.5555", 1)), headers=headers).status_code == 401
    assert client.get("/v1/deposits", headers=headers).status_code == 401
    assert client.get("/v1/audit", headers=headers).status_code == 401
    response = client.post("/servlet/deposit", data={"login_id": "alice", "login_passwd": "alice-password",
                                                     "fname": (__import__("io").BytesIO(b"<x/>"), "b.xml")})
    assert response.status_code == 401 and b"FAILURE" in response.data
    response = client.get("/servlet/query", query_string={"usr": "alice", "pwd": "alice-password",
                                                          "qdata": "1234-5679|J|S|1|1|1|2024|full_text|k|"})
    assert response.status_code == 401
    plain = basic_headers("alice", "alice-password", "text/plain")
    assert client.post("/v1/queries", data=b"1234-5679|J|S|1|1|1|2024|full_text|k|", headers=plain
                       ).status_code == 401
    _set(svc, enable)
    assert client.get("/v1/deposits", headers=headers).status_code == 200


def test_queued_submissions_wait_while_disabled_and_run_once_enabled(svc, client, alice, bob):
    headers = basic_headers("alice", "alice-password")
    response = client.post("/v1/deposits", data=deposit_xml(many("10.5555", 2)), headers=headers)
    assert response.status_code == 202
    submission_id = response.get_json()["submission_id"]
    bob_headers = basic_headers("bob", "bob-password")
    assert client.post("/v1/deposits", data=deposit_xml(many("10.6666", 1)), headers=bob_headers).status_code == 202
    _set(svc, disable)
    svc.worker.run_until_idle()
    svc.worker.drain(timeout=5)  # nothing left that may run: returns at once, does not wait for alice's batch
    with svc.db.sessions() as session:
        statuses = {s.account_id: s.status for s in session.query(Submission)}
    assert statuses == {alice.id: "queued", bob.id: "completed"}
    _set(svc, enable)
    svc.worker.run_until_idle()
    with svc.db.sessions() as session:
        assert session.get(Submission, submission_id).status == "completed"


def test_an_account_sees_the_audit_events_about_itself_only(svc, client, alice, bob):
    _set(svc, disable, "bob")
    _set(svc, enable, "bob")
    with svc.db.transaction() as session:
        from agency.admin.accounts import set_email
        set_email(session, Actor.operator("ops"), "alice", "a2@example.org", "asked by mail")
    body = client.get("/v1/audit", headers=basic_headers("alice", "alice-password")).get_json()
    assert [(e["action"], e["subject"], e["after"], e["reason"]) for e in body["events"]] == [
        ("account.set-email", "account:alice", {"email": "a2@example.org"}, "asked by mail")]
    body = client.get("/v1/audit", headers=basic_headers("bob", "bob-password")).get_json()
    assert [e["action"] for e in body["events"]] == ["account.disable", "account.enable"]
    assert client.get("/v1/audit?since=2999-01-01", headers=basic_headers("bob", "bob-password")
                      ).get_json() == {"events": []}
    response = client.get("/v1/audit?since=yesterday", headers=basic_headers("bob", "bob-password"))
    assert response.status_code == 400 and "not an ISO date" in response.get_json()["error"]["message"]
    assert client.get("/v1/audit").status_code == 401
