"""The upload form takes every kind of file the API takes — deposits, resource-only files, URL update
files and piped query files — through the same intakes, with the same refusals (SQLite and PostgreSQL)."""

from __future__ import annotations

from batchgen import Article, deposit_xml, issn_of_prefix
from conftest import basic_headers
from markupsafe import escape
from recordsdata import collection_item, resources_xml

from ui_forms import sign_in, upload

ALICE_TEXT = basic_headers("alice", "alice-password", "text/plain")


def uploaded(client, svc, data: bytes, name: str, kind: str) -> str:
    """Upload through the form, run the worker; the submission page's path."""
    response = upload(client, data, name, kind=kind)
    assert response.status_code == 303, response.get_data(as_text=True)
    svc.worker.run_until_idle()
    return response.headers["Location"]


def test_resource_only_url_update_and_query_files_get_their_pages(client, svc, alice):
    sign_in(client)
    uploaded(client, svc, deposit_xml([Article("10.5555/up.1", first_page="1"), Article("10.5555/up.2")]),
             "batch.xml", "deposit")
    resources = uploaded(client, svc, resources_xml([collection_item("10.5555/up.2", ["https://mirror.example.org/2"])]),
                         "resources.xml", "deposit")
    page = client.get(resources).get_data(as_text=True)
    assert "1 done of 1: 1 success" in page and "10.5555/up.2" in page

    updates = uploaded(client, svc, b"10.5555/up.1\thttps://moved.example.org/1\n10.5555/absent\thttps://x.example.org/\n",
                       "urls.txt", "url-update")
    page = client.get(updates).get_data(as_text=True)
    assert 'id="kind">URL update file' in page and "2 done of 2: 1 success, 0 warning, 1 failure" in page
    assert 'href="/ui/dois/10.5555/up.1"' in page and "DOI not found" in page
    assert client.get("/10.5555/up.1").headers["Location"] == "https://moved.example.org/1"
    result = client.get(updates + "/result.txt")
    assert result.status_code == 200 and "10.5555/up.1\tSuccess" in result.get_data(as_text=True)
    assert client.get(updates + "/file").data.startswith(b"10.5555/up.1\thttps://moved")
    assert client.get(updates + "/log.xml").data.count(b"<record_diagnostic") == 2

    svc.mddb.run(mail=False)
    line = f"{issn_of_prefix('10.5555')}|Journal of Tests|Smith|1|1|1|2024|||"
    query = uploaded(client, svc, f"{line}\nnot|a|query\n".encode(), "lines.txt", "query")
    page = client.get(query).get_data(as_text=True)
    assert 'id="kind">Query file' in page and "1 found" in page and "10.5555/up.1" in page
    assert "10.5555/up.1" in client.get(query + "/result.txt").get_data(as_text=True)
    found_only = client.get(query + "?status=found").get_data(as_text=True)
    assert "10.5555/up.1" in found_only and "not|a|query" not in found_only

    dashboard = client.get("/ui/").get_data(as_text=True)
    for path in (resources, updates, query):
        assert f'href="{path}"' in dashboard
    deposit_page = client.get(resources).get_data(as_text=True)
    assert 'id="result-link"' not in deposit_page and client.get(resources + "/result.txt").status_code == 404


def test_text_file_refusals_say_what_the_api_says(client, svc, alice):
    sign_in(client)
    for kind, endpoint in (("url-update", "/v1/url-updates"), ("query", "/v1/queries")):
        for data in (b"\n\n", b"10.5555/x\t\xff\xfe not utf-8\n"):
            api = client.post(endpoint, data=data, headers=ALICE_TEXT)
            page = upload(client, data, "lines.txt", kind=kind)
            message = api.get_json()["error"]["message"]
            assert page.status_code == api.status_code >= 400, (kind, data)
            assert str(escape(message)) in page.get_data(as_text=True), (kind, message)
    unknown = upload(client, b"x", "x.txt", kind="mystery")
    assert unknown.status_code == 400 and "Choose what the file is" in unknown.get_data(as_text=True)


def test_upload_is_refused_with_retry_after_when_too_many_files_wait(client, svc, alice, monkeypatch):
    sign_in(client)
    monkeypatch.setattr(svc.intake, "settings", svc.settings.replace(max_pending_per_account=1))
    upload(client, b"10.5555/a\thttps://a.example.org/\n", "urls.txt", kind="url-update")
    refused = upload(client, b"10.5555/a\thttps://a.example.org/\n", "urls.txt", kind="url-update")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0


def test_another_accounts_url_update_is_not_shown(app, client, svc, alice, bob):
    sign_in(client)
    path = upload(client, b"10.5555/a\thttps://a.example.org/\n", "urls.txt", kind="url-update").headers["Location"]
    other = app.test_client()
    sign_in(other, "bob", "bob-password")
    assert other.get(path).status_code == 404 and other.get(path + "/file").status_code == 404
