"""GET /{doi} answers 302 to the registered URL, for every form people paste, and a pending DOI shows a page."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from agency.handles.doi_syntax import doi_key
from batchgen import Article
from conftest import add_account

from resolve_data import ODD_DOIS, pending_xml, register, register_xml

URL = "https://example.org/landing/abc"


@pytest.fixture
def registered(client, svc, alice):
    articles = [Article("10.5555/abc", url=URL)]
    articles += [Article(doi, url=f"https://example.org/odd/{n}") for n, doi in enumerate(ODD_DOIS)]
    register(client, svc, articles)
    return {doi: f"https://example.org/odd/{n}" for n, doi in enumerate(ODD_DOIS)}


def path_of(doi: str) -> str:
    """The DOI percent-encoded as a link to it must be (#, ?, % and spaces escaped; / kept)."""
    return "/" + quote(doi, safe="/:;()<>@!$&'*+,=")


def test_registered_doi_redirects_with_302(client, registered):
    response = client.get("/10.5555/abc")
    assert response.status_code == 302
    assert response.headers["Location"] == URL
    assert "Accept" in response.headers["Vary"]
    assert URL in response.get_data(as_text=True)  # a body with the link, for clients that do not follow


def test_head_redirects_too_without_body(client, registered):
    response = client.head("/10.5555/abc")
    assert response.status_code == 302
    assert response.headers["Location"] == URL
    assert response.get_data() == b""


PASTED = [
    "/doi:10.5555/abc",
    "/DOI:10.5555/abc",
    "/doi: 10.5555/abc",
    "/info:doi/10.5555/abc",
    "/urn:doi:10.5555/abc",
    "/https://doi.org/10.5555/abc",
    "/https:/doi.org/10.5555/abc",  # what a server that merges slashes makes of it
    "/http://dx.doi.org/10.5555/abc",
    "/doi.org/10.5555/abc",
    "/https://doi.org/doi:10.5555/abc",
    "/10.5555%2Fabc",
    "/10.5555%252Fabc",  # encoded twice by a link generator
    "/%31%30%2E%35%35%35%35/abc",
    "/10.5555/ABC",
    "/10.5555/aBc",
]


def test_pasted_forms_resolve(client, registered):
    for path in PASTED:
        response = client.get(path)
        assert response.status_code == 302, (path, response.get_data(as_text=True)[:300])
        assert response.headers["Location"] == URL, path


def test_odd_real_world_suffixes_resolve(client, registered):
    for doi in ODD_DOIS:
        response = client.get(path_of(doi))
        assert response.status_code == 302, (doi, response.get_data(as_text=True)[:300])
        assert response.headers["Location"] == registered[doi], doi
        # Any ASCII case, as the DOI system and Handle.Net servers fold it (non-ASCII letters keep theirs).
        response = client.get(path_of(doi_key(doi)))
        assert response.status_code == 302 and response.headers["Location"] == registered[doi], doi
        swapped = doi.swapcase()
        if not doi.isascii():
            assert client.get(path_of(swapped)).status_code == 404, doi  # "Ü" is another letter than "ü"


def test_wiley_sici_doi_typed_raw(client, svc):
    add_account(svc, "wiley", "wiley-password", "w@example.org", ["10.1002"])
    doi = "10.1002/(SICI)1097-4636(199709)36:3<297::AID-JBM3>3.0.CO;2-G"
    register(client, svc, [Article(doi, url="https://example.org/sici")], login="wiley", password="wiley-password")
    response = client.get("/" + doi)  # <, >, ;, ( and ) left as typed
    assert response.status_code == 302
    assert response.headers["Location"] == "https://example.org/sici"
    assert client.get("/doi:" + doi.lower()).headers["Location"] == "https://example.org/sici"


def test_unicode_url_is_sent_as_ascii_location(client, svc, alice):
    register(client, svc, [Article("10.5555/uni", url="https://example.org/pâge/ü")])
    response = client.get("/10.5555/uni")
    assert response.status_code == 302
    assert response.headers["Location"] == "https://example.org/p%C3%A2ge/%C3%BC"


def test_updated_url_wins_at_once(client, svc, alice):
    register(client, svc, [Article("10.5555/moved", url="https://old.example.org/x", timestamp="1")])
    assert client.get("/10.5555/moved").headers["Location"] == "https://old.example.org/x"
    register(client, svc, [Article("10.5555/moved", url="https://new.example.org/x", timestamp="2")])
    assert client.get("/10.5555/moved").headers["Location"] == "https://new.example.org/x"


def test_pending_publication_shows_a_page_not_an_error(client, svc, alice):
    records = register_xml(client, svc, pending_xml("10.5555/pending.1"))
    assert records[0]["status"] == "Success"
    response = client.get("/10.5555/pending.1")
    assert response.status_code == 200
    assert "Location" not in response.headers
    page = response.get_data(as_text=True)
    assert "Pending publication" in page and "10.5555/pending.1" in page
    as_json = client.get("/10.5555/pending.1", headers={"Accept": "application/json"})
    assert as_json.status_code == 200
    assert as_json.get_json()["status"] == "pending_publication"


def test_pending_doi_resolves_once_published(client, svc, alice):
    register_xml(client, svc, pending_xml("10.5555/soon", timestamp="20240101000000"))
    register(client, svc, [Article("10.5555/soon", url="https://example.org/published", timestamp="20240301000000")])
    response = client.get("/10.5555/soon")
    assert response.status_code == 302 and response.headers["Location"] == "https://example.org/published"


def test_other_blueprints_are_not_shadowed(client, registered):
    assert client.get("/v1/deposits/unknown").get_json()["error"]["code"] == "not_found"  # JSON 404 of the deposit API
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/api/handles/10.5555/abc").get_json()["responseCode"] == 1
    assert client.post("/servlet/deposit").status_code == 401  # the servlet still answers, not the resolver
    assert client.get("/healthz").get_data() == b"ok\n"


def test_browser_accept_header_redirects(client, registered):
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
    for accept in (browser, "*/*", "application/json", "image/png"):
        response = client.get("/10.5555/abc", headers={"Accept": accept})
        assert response.status_code == 302, accept
