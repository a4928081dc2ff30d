"""The web interface through the Flask test client: routing beside the resolver, sessions, CSRF,
throttling, roles, the registrant pages and the staff console (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from batchgen import Article, deposit_xml, issn_of_prefix
from sqlalchemy import select, update

from agency.admin.audit import events
from agency.models import Account, AuditEvent, OutboxMessage, Submission
from agency.notify.outbox import enqueue_mail
from ui_forms import add_operator, csrf_token, post_form, sign_in, upload


@pytest.fixture
def signed_in(client, alice):
    assert sign_in(client).status_code == 302
    return client


def deposit_through_page(client, svc, articles, **kwargs) -> int:
    response = upload(client, deposit_xml(articles, **kwargs))
    assert response.status_code == 303, response.get_data(as_text=True)
    svc.worker.run_until_idle()
    return int(response.headers["Location"].rsplit("/", 1)[1])


# -- routing beside the resolver ---------------------------------------------------------------
def test_home_page_explains_and_resolves_beside_the_doi_resolver(client, svc, alice, signed_in):
    home = client.get("/")
    html = home.get_data(as_text=True)
    assert home.status_code == 200 and "<title>" in html and "DOI Registration Agency" in html
    assert 'action="/resolve"' in html and 'href="/ui/sign-in"' in html and "/v1/deposits" in html
    assert 'href="/docs"' in html  # the OpenAPI page, linked, not duplicated
    assert client.get("/resolve?doi=https://doi.org/10.5555/x").headers["Location"] == "/10.5555/x"
    deposit_through_page(client, svc, [Article("10.5555/ui.1", url="https://example.org/ui1")])
    resolved = client.get("/10.5555/ui.1")
    assert resolved.status_code == 302 and resolved.headers["Location"] == "https://example.org/ui1"
    assert client.get("/ui/no-such-page").status_code == 404
    assert "There is no such page" in client.get("/staff/no-such-page").get_data(as_text=True)


# -- sessions ------------------------------------------------------------------------------------
def test_sign_in_sets_a_fresh_httponly_lax_session_and_sign_out_ends_it(client, alice):
    with client.session_transaction() as session:
        session["sid"] = "planted-before-sign-in"
        session["role"] = "nobody"
    response = sign_in(client)
    assert response.status_code == 302 and response.headers["Location"] == "/ui/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert "alice-password" not in response.headers["Location"]
    with client.session_transaction() as session:
        assert session["role"] == "registrant" and session["sid"] != "planted-before-sign-in"
    assert client.get("/ui/").status_code == 200
    out = post_form(client, "/ui/sign-out", {}, form_page="/ui/")
    assert out.status_code == 302
    assert client.get("/ui/").status_code == 302


def test_session_cookie_is_secure_over_https(client, alice):
    token = csrf_token(client, "https://localhost/ui/sign-in")
    response = client.post("https://localhost/ui/sign-in",
                           data={"csrf_token": token, "login": "alice", "password": "alice-password"},
                           headers={"Referer": "https://localhost/ui/sign-in"})  # checked over HTTPS
    assert response.status_code == 302 and "Secure" in response.headers["Set-Cookie"]


def test_idle_session_is_signed_out(signed_in, svc):
    with signed_in.session_transaction() as session:
        session["seen"] = int(time.time()) - svc.settings.ui_idle_minutes * 60 - 5
    response = signed_in.get("/ui/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/ui/sign-in")
    assert "without activity" in signed_in.get("/ui/sign-in").get_data(as_text=True)


def test_forms_without_the_csrf_token_are_refused(client, alice):
    response = client.post("/ui/sign-in", data={"login": "alice", "password": "alice-password"})
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    sign_in(client)
    wrong = client.post("/ui/account", data={"csrf_token": "forged", "form": "email", "email": "x@example.org"})
    assert wrong.status_code == 400


def test_sign_in_is_throttled_per_login(client, alice, svc):
    for _ in range(svc.settings.ui_sign_in_attempts):
        bad = sign_in(client, password="wrong-password")
        assert bad.status_code == 401 and "login or password is wrong" in bad.get_data(as_text=True)
    throttled = sign_in(client)  # even the right password waits now
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins" in throttled.get_data(as_text=True)


def test_sign_in_is_throttled_per_address_across_logins(client, alice, bob, svc):
    for number in range(svc.settings.ui_sign_in_attempts):
        assert sign_in(client, login=f"guess{number}", password="wrong-password").status_code == 401
    assert sign_in(client, "bob", "bob-password").status_code == 429  # same address, other login


def test_wrong_password_and_disabled_account_cannot_sign_in(client, svc, alice):
    assert sign_in(client, password="nope-nope").status_code == 401
    with svc.db.transaction() as session:
        session.execute(update(Account).where(Account.login == "alice").values(disabled_at=Account.created_at))
    assert sign_in(client).status_code == 401


def test_staff_and_registrant_pages_refuse_each_other(app, svc, alice):
    add_operator(svc)
    registrant, staff = app.test_client(), app.test_client()
    sign_in(registrant)
    assert sign_in(staff, "olga", "olga-password", staff=True).status_code == 302
    assert registrant.get("/staff/").status_code == 403
    assert staff.get("/ui/").status_code == 403
    assert staff.get("/staff/").status_code == 200
    assert sign_in(app.test_client(), "alice", "alice-password", staff=True).status_code == 401  # not an operator
    assert sign_in(app.test_client(), "olga", "olga-password").status_code == 401  # not a registrant


# -- registrant pages --------------------------------------------------------------------------
def test_upload_then_submission_page_with_filters_log_and_file(signed_in, svc):
    submission_id = deposit_through_page(signed_in, svc, [
        Article("10.5555/ok.1"), Article("10.5555/ok.2"), Article("10.7777/not-yours")])
    page = signed_in.get(f"/ui/submissions/{submission_id}").get_data(as_text=True)
    assert "3 done of 3: 2 success, 0 warning, 1 failure" in page
    assert "10.5555/ok.1" in page and "10.7777/not-yours" in page
    failures = signed_in.get(f"/ui/submissions/{submission_id}?status=Failure").get_data(as_text=True)
    assert "10.7777/not-yours" in failures and "10.5555/ok.1" not in failures
    searched = signed_in.get(f"/ui/submissions/{submission_id}?doi=OK.2").get_data(as_text=True)
    assert "10.5555/ok.2" in searched and "10.5555/ok.1" not in searched
    paged = signed_in.get(f"/ui/submissions/{submission_id}?rows=1&page=2").get_data(as_text=True)
    assert "10.5555/ok.2" in paged and "10.5555/ok.1" not in paged and 'rel="next"' in paged
    log = signed_in.get(f"/ui/submissions/{submission_id}/log.xml")
    assert log.mimetype == "application/xml" and b"doi_batch_diagnostic" in log.data
    original = signed_in.get(f"/ui/submissions/{submission_id}/file")
    assert b"10.7777/not-yours" in original.data
    dashboard = signed_in.get("/ui/").get_data(as_text=True)
    assert f'href="/ui/submissions/{submission_id}"' in dashboard and "refresh" not in dashboard


def test_queued_submission_shows_its_position_and_refreshes(signed_in, svc):
    upload(signed_in, deposit_xml([Article("10.5555/q.1")], batch_id="first"))
    upload(signed_in, deposit_xml([Article("10.5555/q.2")], batch_id="second"))
    dashboard = signed_in.get("/ui/").get_data(as_text=True)
    assert 'http-equiv="refresh"' in dashboard
    queued = dashboard.split('id="queued"')[1].split("</table>")[0]
    assert "<td>1</td>" in queued and "<td>2</td>" in queued


def test_refused_file_lists_schema_errors_with_line_path_and_hint(signed_in, svc):
    broken = deposit_xml([Article("10.5555/bad")]).replace(b"<surname>Smith</surname>", b"<surnam>Smith</surnam>")
    response = upload(signed_in, broken)
    assert response.status_code == 303
    page = signed_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "refused" in page and 'id="schema-errors"' in page
    errors = page.split('id="schema-errors"')[1]
    assert "surnam" in errors and "<td>" in errors and "/doi_batch" in errors
    assert "not allowed at this place" in errors or "is missing here" in errors


def test_upload_refusals_say_what_the_api_says(signed_in, svc):
    empty = upload(signed_in, b"")
    assert empty.status_code == 400 and "The uploaded file is empty." in empty.get_data(as_text=True)
    none = post_form(signed_in, "/ui/upload", {}, content_type="multipart/form-data")
    assert none.status_code == 400 and "Choose a file to upload" in none.get_data(as_text=True)


def test_doi_search_and_doi_page(signed_in, svc):
    deposit_through_page(signed_in, svc, [Article("10.5555/find.me", url="https://example.org/found")])
    results = signed_in.get("/ui/dois?q=10.5555/FIND").get_data(as_text=True)
    assert 'href="/ui/dois/10.5555/find.me"' in results
    assert "None of your DOIs" in signed_in.get("/ui/dois?q=10.5555/absent").get_data(as_text=True)
    page = signed_in.get("/ui/dois/10.5555/find.me").get_data(as_text=True)
    assert "https://example.org/found" in page and "HS_ADMIN" in page and 'id="csl-link"' in page
    assert "Not in the metadata index yet" in page
    svc.mddb.run(mail=False)
    indexed = signed_in.get("/ui/dois/10.5555/find.me").get_data(as_text=True)
    assert "A study of things" in indexed
    assert "A study of things" in signed_in.get("/ui/dois?q=study").get_data(as_text=True)
    assert "10.5555/find.me" in signed_in.get("/ui/dois?q=1234-5679").get_data(as_text=True)
    csl = signed_in.get("/ui/csl/10.5555/find.me")
    assert csl.status_code == 200 and csl.get_json()["DOI"].lower() == "10.5555/find.me"


def test_other_accounts_dois_and_submissions_are_not_shown(app, svc, alice, bob, signed_in):
    submission_id = deposit_through_page(signed_in, svc, [Article("10.5555/alices")])
    other = app.test_client()
    sign_in(other, "bob", "bob-password")
    assert other.get(f"/ui/submissions/{submission_id}").status_code == 404
    assert other.get("/ui/dois/10.5555/alices").status_code == 404
    assert "10.5555/alices" not in other.get("/ui/dois?q=10.5555").get_data(as_text=True)


def test_query_page_answers_in_a_table_and_downloads(signed_in, svc):
    deposit_through_page(signed_in, svc, [Article("10.5555/q.found", first_page="1")])
    svc.mddb.run(mail=False)
    line = f"{issn_of_prefix('10.5555')}|Journal of Tests|Smith|1|1|1|2024|||"
    page = post_form(signed_in, "/ui/query", {"lines": line}).get_data(as_text=True)
    assert 'id="answers"' in page and "10.5555/q.found" in page
    download = post_form(signed_in, "/ui/query", {"lines": line, "download": "1"}, form_page="/ui/query")
    assert download.mimetype == "text/plain" and "10.5555/q.found" in download.get_data(as_text=True)
    too_many = "\n".join([line] * (svc.settings.query_sync_lines + 1))
    refused = post_form(signed_in, "/ui/query", {"lines": too_many})
    assert refused.status_code >= 400 and "this form answers up to" in refused.get_data(as_text=True)


def test_change_password_needs_the_old_one_and_ends_other_sessions(app, svc, signed_in):
    other = app.test_client()
    sign_in(other)
    wrong = post_form(signed_in, "/ui/account", {"form": "password", "old_password": "guess-guess",
                                                 "new_password": "new-password-1", "repeat_password": "new-password-1"})
    assert wrong.status_code == 400 and "current password is wrong" in wrong.get_data(as_text=True)
    done = post_form(signed_in, "/ui/account", {"form": "password", "old_password": "alice-password",
                                                "new_password": "new-password-1", "repeat_password": "new-password-1"})
    assert done.status_code == 303
    assert signed_in.get("/ui/account").status_code == 200  # this session continues
    assert other.get("/ui/").status_code == 302  # the other one ended
    assert sign_in(app.test_client(), password="new-password-1").status_code == 302
    email = post_form(signed_in, "/ui/account", {"form": "email", "email": "new@example.org"})
    assert email.status_code == 303
    with svc.db.sessions() as session:
        actions = [e.action for e in events(session, subject="account:alice")]
    assert actions == ["account.passwd", "account.set-email"]  # the events `agency accounts` leaves


# -- staff console -----------------------------------------------------------------------------
@pytest.fixture
def staff(app, svc):
    add_operator(svc)
    client = app.test_client()
    assert sign_in(client, "olga", "olga-password", staff=True).status_code == 302
    return client


def test_staff_create_account_add_prefix_disable_all_audited(staff, svc, app):
    created = post_form(staff, "/staff/accounts", {"login": "carol", "email": "carol@example.org",
                                                   "password": "carol-password", "prefixes": "10.7777"})
    assert created.status_code == 303
    account_page = created.headers["Location"]
    dup = post_form(staff, "/staff/accounts", {"login": "carol", "email": "c@example.org", "password": "xxxxxxxxx"})
    assert dup.status_code == 400 and "exists already" in dup.get_data(as_text=True)
    assert post_form(staff, account_page, {"action": "prefix", "prefix": "10.8888"}).status_code == 303
    assert "10.7777, 10.8888" in staff.get(account_page).get_data(as_text=True)
    assert "carol" in staff.get("/staff/accounts?q=10.88").get_data(as_text=True)
    assert sign_in(app.test_client(), "carol", "carol-password").status_code == 302
    assert post_form(staff, account_page, {"action": "disable", "reason": "asked to"}).status_code == 303
    assert sign_in(app.test_client(), "carol", "carol-password").status_code == 401
    with svc.db.sessions() as session:
        trail = [(e.actor, e.action) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert trail[-3:] == [("operator:olga", "account.create"), ("operator:olga", "prefix.add"),
                          ("operator:olga", "account.disable")]
    assert "account.disable" in staff.get("/staff/audit").get_data(as_text=True)


def test_staff_retries_a_dead_mail_and_sees_queue_and_load(staff, svc):
    with svc.db.transaction() as session:
        message = enqueue_mail(session, key="dead-1", recipients=["x@example.org"], subject="Lost", text="t")
        session.flush()
        message.status, message.last_error = "dead", "550 no such user"
    page = staff.get("/staff/mail").get_data(as_text=True)
    assert "550 no such user" in page
    assert post_form(staff, "/staff/mail", {"id": str(message.id)}).status_code == 303
    with svc.db.sessions() as session:
        assert session.get(OutboxMessage, message.id).status == "pending"
    assert "No dead messages" in staff.get("/staff/mail").get_data(as_text=True)
    overview = staff.get("/staff/").get_data(as_text=True)
    assert 'id="mddb"' in overview and 'id="mail-counts"' in overview
    assert "Nothing is queued" in staff.get("/staff/queue").get_data(as_text=True)


def test_a_failing_page_answers_500_without_a_stack_trace(app, signed_in, monkeypatch):
    app.testing = False
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def broken(*_args, **_kwargs):
        raise RuntimeError("internal detail that must not leak")

    monkeypatch.setattr("agency.web.ui.registrant.queue_position", broken)
    monkeypatch.setattr("agency.web.ui.registrant.select", broken)
    response = signed_in.get("/ui/")
    page = response.get_data(as_text=True)
    assert response.status_code == 500 and "Something went wrong on our side" in page
    assert "Traceback" not in page and "internal detail" not in page


def test_sign_in_returns_to_the_page_asked_for_but_never_off_site(app, alice):
    client = app.test_client()
    asked = client.get("/ui/dois?q=10.5555")
    assert asked.headers["Location"] == "/ui/sign-in?next=/ui/dois?q%3D10.5555"
    back = post_form(client, "/ui/sign-in", {"login": "alice", "password": "alice-password",
                                             "next": "/ui/dois?q=10.5555"})
    assert back.headers["Location"] == "/ui/dois?q=10.5555"
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        other = app.test_client()
        answer = post_form(other, "/ui/sign-in", {"login": "alice", "password": "alice-password", "next": target})
        assert answer.headers["Location"] == "/ui/", target


def test_staff_releases_a_stuck_submission_and_a_worker_finishes_it(staff, app, svc, alice):
    registrant = app.test_client()
    sign_in(registrant)
    submission_id = int(upload(registrant, deposit_xml([Article("10.5555/stuck")])).headers["Location"].rsplit("/", 1)[1])
    far = datetime.now(timezone.utc) + timedelta(hours=1)
    with svc.db.transaction() as session:
        session.execute(update(Submission).where(Submission.id == submission_id)
                        .values(status="processing", lease_owner="hung-worker", lease_expires_at=far))
    svc.worker.run_until_idle()
    assert "hung-worker" in staff.get("/staff/queue").get_data(as_text=True)  # its lease still runs
    released = post_form(staff, f"/staff/queue/{submission_id}/release", {}, form_page="/staff/queue")
    assert released.status_code == 303
    assert "is released" in staff.get("/staff/queue").get_data(as_text=True)
    svc.worker.run_until_idle()
    assert "1 success" in registrant.get(f"/ui/submissions/{submission_id}").get_data(as_text=True)
    again = post_form(staff, f"/staff/queue/{submission_id}/release", {}, form_page="/staff/queue")
    assert "is not in process" in staff.get(again.headers["Location"]).get_data(as_text=True)
    with svc.db.sessions() as session:
        event = list(events(session, subject=f"submission:{submission_id}"))[0]
    assert (event.actor, event.action, event.before["lease_owner"]) == ("operator:olga", "submission.release",
                                                                         "hung-worker")


def test_table_filter_script_is_an_enhancement_only(signed_in, svc):
    deposit_through_page(signed_in, svc, [Article("10.5555/f.1"), Article("10.5555/f.2")])
    script = signed_in.get("/static/tables.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert "table.filterable" in script.get_data(as_text=True)
    page = signed_in.get("/ui/").get_data(as_text=True)
    assert '<script src="/static/tables.js" defer></script>' in page and "<script>" not in page  # no inline code
    assert 'id="recent" class="filterable"' in page
    submission = signed_in.get("/ui/").get_data(as_text=True).split('href="/ui/submissions/')[1].split('"')[0]
    server_side = signed_in.get(f"/ui/submissions/{submission}?doi=F.2").get_data(as_text=True)
    assert "10.5555/f.2" in server_side and "10.5555/f.1" not in server_side  # without JavaScript too
