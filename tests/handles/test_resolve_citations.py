"""Content negotiation: CSL JSON and BibTeX from the metadata index; everything else redirects."""

from __future__ import annotations

import pytest
from batchgen import Article

from resolve_data import register

CSL = {"Accept": "application/vnd.citationstyles.csl+json"}
BIBTEX = {"Accept": "application/x-bibtex"}


@pytest.fixture
def indexed(client, svc, alice):
    register(client, svc, [Article("10.5555/cite.1", url="https://example.org/cite", title="Growth of {Things} & 100% more_stuff",
                                   surname="Müller", first_page="17")],
             journal="Journal of Tests", issn="1234-5679")
    svc.mddb.run(mail=False)


def test_csl_json(client, indexed):
    response = client.get("/10.5555/cite.1", headers=CSL)
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.citationstyles.csl+json"
    assert "Accept" in response.headers["Vary"]
    item = response.get_json()
    assert item["type"] == "article-journal"
    assert item["DOI"] == "10.5555/cite.1" and item["URL"] == "https://example.org/cite"
    assert item["title"] == "Growth of {Things} & 100% more_stuff"
    assert item["container-title"] == "Journal of Tests"
    assert item["author"] == [{"family": "Müller", "given": "Ann"}]
    assert item["volume"] == "1" and item["issue"] == "1" and item["page"] == "17"
    assert item["issued"] == {"date-parts": [[2024]]}
    assert item["ISSN"] == ["1234-5679"]


def test_bibtex(client, indexed):
    response = client.get("/10.5555/CITE.1", headers=BIBTEX)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-bibtex; charset=utf-8"
    text = response.get_data(as_text=True)
    assert text.startswith("@article{Muller_2024,\n")
    assert "  title = {{Growth of \\{Things\\} \\& 100\\% more\\_stuff}}" in text
    assert "  author = {Müller, Ann}" in text
    assert "  journal = {Journal of Tests}" in text
    assert "  doi = {10.5555/cite.1}" in text and "  year = {2024}" in text
    assert text.rstrip().endswith("}")


def test_metadata_not_indexed_yet_is_204_as_doi_org_answers_not_a_redirect(client, svc, alice):
    register(client, svc, [Article("10.5555/fresh", url="https://example.org/fresh")])
    for accept in (CSL, BIBTEX):
        response = client.get("/10.5555/fresh", headers=accept)
        assert response.status_code == 204 and response.data == b""
    assert client.get("/10.5555/fresh").status_code == 302


def test_other_accept_types_redirect(client, indexed):
    for accept in ("text/html", "application/json", "image/png", "*/*",
                   "text/html, application/x-bibtex;q=0.5"):
        assert client.get("/10.5555/cite.1", headers={"Accept": accept}).status_code == 302, accept
    assert client.get("/10.5555/cite.1", headers={"Accept": "application/x-bibtex, text/html;q=0.5"}).status_code == 200


def test_unknown_doi_with_metadata_accept_is_json_404(client, indexed):
    response = client.get("/10.5555/missing", headers=CSL)
    assert response.status_code == 404 and response.get_json()["problem"] == "unknown_suffix"
