"""Everything a registrant supplies is escaped on every page that shows it: a deposit whose title, DOI
suffix, URL, batch id and file name carry HTML and script payloads (SQLite and PostgreSQL)."""

from __future__ import annotations

from batchgen import Article, deposit_xml
from markupsafe import escape

from ui_forms import add_operator, post_form, sign_in, upload

SCRIPT = "<script>alert('t')</script>"
DOI = '10.5555/x"><img/src=x/onerror=alert(1)>'
URL = 'https://example.org/a?b="><script>alert(2)</script>'
BATCH = "b<svg onload=alert(3)>"
FILE_NAME = "f<b onmouseover=alert(4)>.xml"
PAYLOADS = (SCRIPT, '"><img/src=x/onerror=alert(1)>', '"><script>alert(2)</script>', "<svg onload=alert(3)>",
            "<b onmouseover=alert(4)>")


def assert_escaped(page: str, *expected: str) -> None:
    for payload in PAYLOADS:
        assert payload not in page
    assert "<script>" not in page.lower()
    for text in expected:
        assert str(escape(text)) in page, text  # as Jinja escapes it: & < > " '



def test_registrant_payloads_are_escaped_everywhere(app, client, svc, alice):
    add_operator(svc)
    sign_in(client)
    xml = deposit_xml([Article(DOI, url=URL, title=SCRIPT)], batch_id=BATCH)
    response = upload(client, xml, FILE_NAME)
    assert response.status_code == 303, response.get_data(as_text=True)
    submission = response.headers["Location"]
    queued_staff = app.test_client()
    sign_in(queued_staff, "olga", "olga-password", staff=True)
    assert_escaped(queued_staff.get("/staff/queue").get_data(as_text=True), FILE_NAME[:-4], BATCH)
    assert_escaped(client.get("/ui/").get_data(as_text=True), FILE_NAME[:-4], BATCH)
    svc.worker.run_until_idle()
    svc.mddb.run(mail=False)
    page = client.get(submission).get_data(as_text=True)
    assert "1 success" in page
    assert_escaped(page, DOI, BATCH, FILE_NAME[:-4])
    assert_escaped(client.get("/ui/").get_data(as_text=True), FILE_NAME[:-4], BATCH)
    assert_escaped(client.get("/ui/dois", query_string={"q": "10.5555/x"}).get_data(as_text=True), DOI, SCRIPT)
    assert_escaped(client.get("/ui/dois", query_string={"q": "alert"}).get_data(as_text=True), DOI, SCRIPT)
    doi_page = client.get("/ui/dois/" + DOI)
    assert doi_page.status_code == 200
    assert_escaped(doi_page.get_data(as_text=True), DOI, SCRIPT, URL)
    assert_escaped(client.get(submission + "?doi=" + "onerror").get_data(as_text=True), DOI)
    # A search term echoed back is escaped too.
    assert_escaped(client.get("/ui/dois", query_string={"q": SCRIPT}).get_data(as_text=True), SCRIPT)
    staff_pages = [queued_staff.get(p).get_data(as_text=True) for p in ("/staff/", "/staff/audit", "/staff/accounts")]
    for page in staff_pages:
        assert_escaped(page)


def test_a_javascript_url_is_never_a_link(client, svc, alice):
    """Registration refuses the record (http/https only), so no page can offer it as a link."""
    sign_in(client)
    response = upload(client, deposit_xml([Article("10.5555/js", url="javascript:alert(5)")]))
    svc.worker.run_until_idle()
    assert client.get("/ui/dois/10.5555/js").status_code == 404
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Failure" in page and "start with http" in page and 'href="javascript:' not in page


def test_error_pages_escape_the_requested_path(client, alice):
    sign_in(client)
    page = client.get("/ui/<script>alert(6)</script>").get_data(as_text=True)
    assert "<script>alert(6)" not in page
    staff_login = post_form(client, "/staff/sign-in", {"login": SCRIPT, "password": "x"})
    assert "<script>" not in staff_login.get_data(as_text=True).lower()


def test_payloads_in_callbacks_transfers_and_text_files_are_escaped(app, client, svc, alice, bob, monkeypatch):
    from agency.admin import transfers
    from agency.admin.audit import Actor

    add_operator(svc)
    sign_in(client)
    monkeypatch.setattr(svc, "settings", svc.settings.replace(callback_allow_private=True))
    post_form(client, "/ui/account", {"form": "callback", "url": "http://127.0.0.1:9/" + "a?b=%22%3E", "endpoint": SCRIPT})
    upload(client, deposit_xml([Article(DOI, url=URL, title=SCRIPT)], batch_id=BATCH), FILE_NAME)
    svc.worker.run_until_idle()
    text = upload(client, f"{DOI}\t{URL}\n{SCRIPT}\n".encode(), FILE_NAME, kind="url-update")
    assert text.status_code == 303
    svc.worker.run_until_idle()
    assert_escaped(client.get(text.headers["Location"]).get_data(as_text=True), DOI, SCRIPT)
    with svc.db.transaction() as session:
        transfers.open_transfer(session, Actor.operator("olga"), "bob", from_login="alice", dois=[DOI])
    assert_escaped(client.get("/ui/account").get_data(as_text=True), SCRIPT)
    assert_escaped(client.get("/ui/dois/" + DOI).get_data(as_text=True), DOI)  # with its versions table
    staff = app.test_client()
    sign_in(staff, "olga", "olga-password", staff=True)
    for path in ("/staff/transfers", "/staff/queue", "/staff/audit"):
        assert_escaped(staff.get(path).get_data(as_text=True))
