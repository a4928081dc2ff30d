"""The staff console's prefix, transfer and queue actions: the functions the ``agency`` command calls,
each landing in the audit trail with the operator as its actor (SQLite and PostgreSQL)."""

from __future__ import annotations

import re

import pytest
from batchgen import Article, deposit_xml
from sqlalchemy import select

from agency.admin.audit import events
from agency.handles.prefix_records import create_prefix_record, hashed_secret, parse_reference
from agency.handles.store import handle_values
from agency.models import Handle, Prefix, Submission
from agency.services import handle_audit
from ui_forms import add_operator, post_form, sign_in, upload


@pytest.fixture
def staff(app, svc):
    add_operator(svc)
    client = app.test_client()
    assert sign_in(client, "olga", "olga-password", staff=True).status_code == 302
    return client


def account_page(svc, login: str) -> str:
    from agency.admin.accounts import account_by_login

    with svc.db.sessions() as session:
        return f"/staff/accounts/{account_by_login(session, login).id}"


def audit_of(svc, subject: str) -> list[tuple[str, str]]:
    with svc.db.sessions() as session:
        return [(e.actor, e.action) for e in events(session, subject=subject)]


def test_move_a_prefix_through_a_transfer_with_relayed_consents(staff, app, svc, alice, bob):
    registrant = app.test_client()
    sign_in(registrant)
    upload(registrant, deposit_xml([Article("10.5555/moving")]))
    svc.worker.run_until_idle()
    page = account_page(svc, "alice")
    unknown = post_form(staff, page, {"action": "move-prefix", "prefix": "10.5555", "to": "nobody"})
    assert unknown.status_code == 400 and "no account &#39;nobody&#39;" in unknown.get_data(as_text=True)
    opened = post_form(staff, page, {"action": "move-prefix", "prefix": "10.5555", "to": "bob"})
    assert opened.status_code == 303 and opened.headers["Location"] == "/staff/transfers"
    listing = staff.get("/staff/transfers").get_data(as_text=True)
    transfer_id = int(re.search(r'id="transfer-(\d+)"', listing).group(1))
    assert "Transfer" in listing and "prefix 10.5555" in listing
    early = post_form(staff, f"/staff/transfers/{transfer_id}", {"action": "complete"}, form_page="/staff/transfers")
    assert "waits for the consent" in staff.get(early.headers["Location"]).get_data(as_text=True)
    for action in ("consent-from", "consent-to", "complete"):
        post_form(staff, f"/staff/transfers/{transfer_id}", {"action": action}, form_page="/staff/transfers")
    with svc.db.sessions() as session:
        assert session.get(Prefix, "10.5555").account.login == "bob"
        assert session.get(Handle, "10.5555/MOVING").account_id == session.get(Prefix, "10.5555").account_id
    assert audit_of(svc, f"transfer:{transfer_id}")[-1] == ("operator:olga", "transfer.complete")
    assert "No transfer is waiting" in staff.get("/staff/transfers").get_data(as_text=True)


def test_rotate_a_prefix_secret_typed_or_generated(staff, svc, alice):
    with svc.db.transaction() as session:
        create_prefix_record(session, "10.5555", "alice", ra_admin=parse_reference(svc.settings.handle_ra_admin),
                             service_handle=svc.settings.handle_service, ttl=svc.settings.handle_ttl,
                             actor="operator:test", audit=handle_audit)
    page = account_page(svc, "alice")

    def stored() -> bytes:
        with svc.db.sessions() as session:
            return next(v.data for v in handle_values(session, "0.NA/10.5555") if v.type == "HS_SECKEY")

    typed = post_form(staff, page, {"action": "secret", "prefix": "10.5555", "secret": "a-typed-secret-1"})
    assert typed.status_code == 200 and "secret key is set" in typed.get_data(as_text=True)
    assert "a-typed-secret-1" not in typed.get_data(as_text=True) and stored() == hashed_secret("a-typed-secret-1")
    generated = post_form(staff, page, {"action": "secret", "prefix": "10.5555", "secret": ""})
    secret = re.search(r'id="new-secret">.*?<code>([^<]+)</code>', generated.get_data(as_text=True), re.S).group(1)
    assert generated.headers["Cache-Control"] == "no-store" and stored() == hashed_secret(secret)
    short = post_form(staff, page, {"action": "secret", "prefix": "10.5555", "secret": "short"})
    assert short.status_code == 400 and "at least 12" in short.get_data(as_text=True)
    other = post_form(staff, page, {"action": "secret", "prefix": "10.9999", "secret": "a-typed-secret-2"})
    assert other.status_code == 400 and stored() == hashed_secret(secret)
    assert audit_of(svc, "handle:0.NA/10.5555") == [("operator:test", "handle.create"),
                                                    ("operator:olga", "handle.update"),
                                                    ("operator:olga", "handle.update")]


def test_pause_resume_and_retry_from_the_queue(staff, app, svc, alice):
    registrant = app.test_client()
    sign_in(registrant)
    submission_id = int(upload(registrant, deposit_xml([Article("10.5555/held")])).headers["Location"].rsplit("/", 1)[1])

    def act(action: str) -> str:
        answer = post_form(staff, f"/staff/queue/{submission_id}/{action}", {"reason": "ticket 7"},
                           form_page="/staff/queue")
        assert answer.status_code == 303
        return staff.get(answer.headers["Location"]).get_data(as_text=True)

    assert "paused" in act("pause")
    svc.worker.run_until_idle()
    with svc.db.sessions() as session:
        assert session.get(Submission, submission_id).status == "paused"  # no worker took it
    assert f'id="resume-{submission_id}"' in staff.get("/staff/queue").get_data(as_text=True)
    assert "paused" in registrant.get("/ui/").get_data(as_text=True)
    assert "only paused ones can be resumed" not in act("resume")
    svc.worker.run_until_idle()
    assert "1 success" in registrant.get(f"/ui/submissions/{submission_id}").get_data(as_text=True)
    assert "only queued or processing ones can be paused" in act("pause")
    assert "not failed" in act("retry")
    with svc.db.transaction() as session:
        session.get(Submission, submission_id).status = "failed"
    assert "queued again" in act("retry")
    trail = audit_of(svc, f"submission:{submission_id}")
    assert trail == [("operator:olga", "submission.pause"), ("operator:olga", "submission.resume"),
                     ("operator:olga", "submission.retry")]


def test_staff_actions_refuse_registrant_sessions_and_forms_without_token(app, svc, alice, staff):
    registrant = app.test_client()
    sign_in(registrant)
    for path in ("/staff/transfers", "/staff/queue"):
        assert registrant.get(path).status_code == 403
    assert registrant.post("/staff/queue/1/pause", data={"csrf_token": "x"}).status_code in (400, 403)
    assert staff.post("/staff/queue/1/pause", data={}).status_code == 400  # no CSRF token
    assert staff.post("/staff/transfers/1", data={"action": "withdraw"}).status_code == 400


def test_cli_pauses_and_resumes_with_the_same_events(svc, alice, monkeypatch, capsys):
    from agency.cli import main

    s = svc.settings
    for name, value in {"DATA_DIR": s.data_dir, "BATCH_DIR": s.batch_dir, "DATABASE_URL": s.database_url,
                        "RUN_WORKER": "0", "RUN_SCHEDULER": "0", "PASSWORD_TIME_COST": "1",
                        "OPERATOR": "ops"}.items():
        monkeypatch.setenv(f"AGENCY_{name}", str(value))
    import io
    submission, _ = svc.intake.receive(alice, io.BytesIO(deposit_xml([Article("10.5555/cli.hold")])), "c.xml")
    assert main(["submissions", "pause", str(submission.id), "--reason", "asked"]) == 0
    assert main(["submissions", "pause", str(submission.id)]) == 2
    assert main(["submissions", "resume", str(submission.id)]) == 0
    assert "resumed (queued)" in capsys.readouterr().out
    assert [a for _, a in audit_of(svc, f"submission:{submission.id}")] == ["submission.pause", "submission.resume"]
    with svc.db.sessions() as session:
        assert session.scalar(select(Submission.status).where(Submission.id == submission.id)) == "queued"


def test_pausing_a_submission_in_process_takes_its_lease_and_resume_goes_on(staff, app, svc, alice):
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import update

    registrant = app.test_client()
    sign_in(registrant)
    submission_id = int(upload(registrant, deposit_xml([Article("10.5555/mid")])).headers["Location"].rsplit("/", 1)[1])
    far = datetime.now(timezone.utc) + timedelta(hours=1)
    with svc.db.transaction() as session:
        session.execute(update(Submission).where(Submission.id == submission_id)
                        .values(status="processing", lease_owner="busy-worker", lease_expires_at=far,
                                started_at=datetime.now(timezone.utc)))
    post_form(staff, f"/staff/queue/{submission_id}/pause", {}, form_page="/staff/queue")
    with svc.db.sessions() as session:
        paused = session.get(Submission, submission_id)
        assert (paused.status, paused.lease_owner) == ("paused", None)  # the busy worker's next write fails
    post_form(staff, f"/staff/queue/{submission_id}/resume", {}, form_page="/staff/queue")
    with svc.db.sessions() as session:
        assert session.get(Submission, submission_id).status == "processing"  # without a lease: claimable
    svc.worker.run_until_idle()
    assert "1 success" in registrant.get(f"/ui/submissions/{submission_id}").get_data(as_text=True)
    with svc.db.sessions() as session:
        assert list(events(session, subject=f"submission:{submission_id}"))[0].before == {
            "status": "processing", "lease_owner": "busy-worker"}
