"""A DOI that is not found gets a 404 page saying what is likely wrong (JSON for API clients)."""

from __future__ import annotations

import pytest
from batchgen import Article

from resolve_data import register

JSON = {"Accept": "application/json"}


@pytest.fixture
def registered(client, svc, alice, bob):
    register(client, svc, [Article("10.5555/abc.123", url="https://example.org/abc"),
                           Article("10.5555/x(1)", url="https://example.org/x1")])


def problem_of(client, path: str) -> dict:
    response = client.get(path, headers=JSON)
    assert response.status_code == 404, (path, response.status_code)
    assert response.mimetype == "application/json"
    return response.get_json()


def test_page_looks_like_the_doi_not_found_page(client, registered):
    response = client.get("/10.5555/nope")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "<title>DOI Not Found</title>" in page
    assert "10.5555/nope" in page
    assert "copied incorrectly" in page and "not be registered yet" in page
    assert 'href="/static/style.css"' in page


def test_unknown_suffix_of_a_served_prefix(client, registered):
    body = problem_of(client, "/10.5555/nope")
    assert body["problem"] == "unknown_suffix"
    assert body["doi"] == "10.5555/nope"
    assert len(body["hints"]) == 3
    assert "suggestion" not in body


def test_only_a_prefix(client, registered):
    for path in ("/10.5555", "/10.5555/", "/doi:10.5555", "/10.5555/%20"):
        body = problem_of(client, path)
        assert body["problem"] == "prefix_only", path
        assert "Only a prefix (10.5555)" in body["hints"][0]
        assert "served by this agency" in body["hints"][0]
    assert "served by this agency" not in problem_of(client, "/10.9999")["hints"][0]


def test_trailing_slash_suggests_the_doi(client, registered):
    body = problem_of(client, "/10.5555/abc.123/")
    assert body["problem"] == "trailing_slash"
    assert body["suggestion"] == "10.5555/abc.123"
    page = client.get("/10.5555/abc.123/").get_data(as_text=True)
    assert 'href="/10.5555/abc.123"' in page and "Did you mean" in page


def test_several_slashes(client, registered):
    body = client.get("/", environ_overrides={"PATH_INFO": "/10.5555//abc.123"}, headers=JSON)
    assert body.status_code == 404
    body = body.get_json()
    assert body["problem"] == "several_slashes"
    assert body["suggestion"] == "10.5555/abc.123"


SLIPS = [
    "/10.5555/abc.123.",          # full stop of the sentence
    "/10.5555/abc.123,",
    "/10.5555/abc.123%22",        # closing quote
    "/%E2%80%9C10.5555/abc.123%E2%80%9D",  # curly quotes
    "/(10.5555/abc.123)",
    "/%3C10.5555/abc.123%3E",     # <...>
    "/%2010.5555/abc.123%20",     # spaces
    "/10.5555/abc.123%09",        # a tab
    "/10.5555/abc.123%0D%0A",     # the line break after it
    "/10.5555/abc%C2%AD.123",     # a soft hyphen from a PDF
    "/10.5555/abc.%20123",        # broken across lines
]


def test_surrounding_characters_suggest_the_doi(client, registered):
    for path in SLIPS:
        body = problem_of(client, path)
        assert body["problem"] == "surrounding_characters", (path, body)
        assert body["suggestion"] == "10.5555/abc.123", path


def test_closing_bracket_of_the_doi_itself_is_kept(client, registered):
    assert client.get("/10.5555/x(1)").status_code == 302
    body = problem_of(client, "/10.5555/x(1).")
    assert body["suggestion"] == "10.5555/x(1)"


def test_prefix_of_no_registrant_here(client, registered):
    body = problem_of(client, "/10.9999/abc")
    assert body["problem"] == "foreign_prefix"
    assert body["elsewhere"] == "https://doi.org/10.9999/abc"
    assert "not served by this agency" in body["hints"][0]
    page = client.get("/10.9999/abc").get_data(as_text=True)
    assert "another Registration Agency" in page
    assert 'href="https://doi.org/10.9999/abc"' in page


def test_another_registrants_prefix_is_served_here(client, registered):
    # 10.6666 belongs to bob: served here, so the DOI is simply not registered.
    assert problem_of(client, "/10.6666/abc")["problem"] == "unknown_suffix"


def test_not_a_doi(client, registered):
    for path in ("/favicon.ico", "/../../etc/passwd", "/hello/world", "/10/abc", "/10.abc/def"):
        assert problem_of(client, path)["problem"] == "not_a_doi", path


def test_page_escapes_what_was_asked(client, registered):
    response = client.get("/10.5555/%3Cscript%3Ealert(1)%3C/script%3E")
    page = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


def test_json_when_the_client_prefers_json(client, registered):
    for accept in ("application/json", "application/json, text/html;q=0.5",
                   "application/vnd.citationstyles.csl+json"):
        response = client.get("/10.5555/nope", headers={"Accept": accept})
        assert response.mimetype == "application/json", accept
    for accept in ("text/html", "*/*", "text/html, application/json;q=0.5"):
        response = client.get("/10.5555/nope", headers={"Accept": accept})
        assert response.mimetype == "text/html", accept


def test_head_of_a_missing_doi_is_404(client, registered):
    response = client.head("/10.5555/nope")
    assert response.status_code == 404 and response.get_data() == b""
