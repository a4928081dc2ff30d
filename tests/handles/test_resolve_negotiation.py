"""Resolution like doi.org: more content types, highest q wins, 204/406, caching validators, CORS, proxy parameters."""

from __future__ import annotations

import json

import pytest
from lxml import etree
from batchgen import Article, deposit_xml

from resolve_data import register, register_xml

from agency.handles.formats import BIBTEX, CSL_JSON, REDIRECT, RIS, negotiate

DOI = "10.5555/neg.2"


@pytest.fixture
def indexed(client, svc, alice):
    articles = [Article("10.5555/neg.1", title="First of three"),
                Article(DOI, url="https://example.org/neg-2", title="Growth of things", surname="Müller",
                        first_page="17"),
                Article("10.5555/neg.3", title="Third of three")]
    register(client, svc, articles, journal="Journal of Tests", issn="1234-5679", batch_id="neg-batch")
    svc.mddb.run(mail=False)


def get(client, path: str = "/" + DOI, **headers):
    return client.get(path, headers=headers)


def test_highest_quality_wins_and_ties_go_to_the_first_listed():
    assert negotiate(f"{BIBTEX};q=0.5, {RIS};q=0.9").media_type == RIS
    assert negotiate(f"{RIS}, {BIBTEX}").media_type == RIS
    assert negotiate(f"{BIBTEX}, {RIS}").media_type == BIBTEX
    assert negotiate(f"text/html;q=0.9, {CSL_JSON}").media_type == CSL_JSON
    assert negotiate(f"text/html, {CSL_JSON}") == REDIRECT
    assert negotiate(f"*/*, {BIBTEX}") == REDIRECT
    assert negotiate(f"{BIBTEX};q=0, image/png") == REDIRECT
    assert negotiate("image/png, application/pdf") == REDIRECT
    assert negotiate(None) == REDIRECT and negotiate("") == REDIRECT
    chosen = negotiate('text/x-bibliography; style="apa"; locale=fr-FR; q=0.8, text/html;q=0.1')
    assert chosen.media_type == "text/x-bibliography" and chosen.params == {"style": "apa", "locale": "fr-FR"}
    assert negotiate(f"{BIBTEX};q=abc, {RIS};q=0.1").media_type == RIS  # a q that is not a number counts as 0
    assert negotiate(",".join(["image/png"] * 5000) + f",{BIBTEX}") == REDIRECT  # the header is read bounded


def test_ris(client, indexed):
    response = get(client, Accept=RIS)
    assert response.status_code == 200 and response.mimetype == RIS
    lines = response.get_data(as_text=True).split("\r\n")
    assert lines[0] == "TY  - JOUR" and lines[-2] == "ER  - "
    assert {"DO  - 10.5555/neg.2", "TI  - Growth of things", "AU  - Müller, Ann", "T2  - Journal of Tests",
            "PY  - 2024", "SP  - 17", "VL  - 1", "IS  - 1", "SN  - 1234-5679"} <= set(lines)


def test_formatted_citation_in_apa_through_citeproc(client, indexed):
    response = get(client, Accept="text/x-bibliography; style=apa; locale=en-US")
    assert response.status_code == 200 and response.mimetype == "text/x-bibliography"
    text = response.get_data(as_text=True)
    assert text == "Müller, A. (2024). Growth of things. Journal of Tests, 1(1), 17. https://doi.org/10.5555/neg.2\n"
    assert get(client, Accept="text/x-bibliography").get_data(as_text=True) == text  # apa, en-US by default
    german = get(client, Accept="text/x-bibliography; style=apa; locale=de-DE")
    assert german.status_code == 200 and "Müller, A. (2024)" in german.get_data(as_text=True)
    unknown = get(client, Accept="text/x-bibliography; style=no-such-style")
    assert unknown.status_code == 406
    assert unknown.get_json()["error"]["code"] == "unknown_style" and "apa" in unknown.get_json()["error"]["message"]


def test_unixref_is_the_record_as_deposited_without_the_other_records(client, indexed):
    response = get(client, Accept="application/vnd.crossref.unixref+xml")
    assert response.status_code == 200 and response.mimetype == "application/vnd.crossref.unixref+xml"
    root = etree.fromstring(response.data)
    assert root.tag == "doi_records" and root[0].get("owner") == "10.5555"
    assert root[0].get("timestamp") == "20240101000000"
    ns = {"c": "http://www.crossref.org/schema/5.3.0"}
    journal = root.find("doi_record/crossref/c:journal", ns)
    assert journal.findtext("c:journal_metadata/c:full_title", namespaces=ns) == "Journal of Tests"
    assert journal.find("c:journal_issue", ns) is not None
    assert [d.text for d in journal.iterfind(".//c:doi_data/c:doi", ns)] == [DOI]
    assert journal.findtext(".//c:journal_article/c:titles/c:title", namespaces=ns) == "Growth of things"


def test_unixref_needs_no_index(client, svc, alice):
    register(client, svc, [Article("10.5555/raw.1")])
    response = get(client, "/10.5555/raw.1", Accept="application/vnd.crossref.unixref+xml")
    assert response.status_code == 200 and b"10.5555/raw.1" in response.data


def test_rdf_xml_and_turtle(client, indexed):
    response = get(client, Accept="application/rdf+xml")
    assert response.status_code == 200 and response.mimetype == "application/rdf+xml"
    root = etree.fromstring(response.data)
    ns = {"rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "dcterms": "http://purl.org/dc/terms/",
          "schema": "http://schema.org/"}
    node = root.find("rdf:Description", ns)
    assert node.get(f"{{{ns['rdf']}}}about") == "https://doi.org/10.5555/neg.2"
    assert node.findtext("dcterms:title", namespaces=ns) == "Growth of things"
    assert node.findtext("dcterms:creator/schema:familyName", namespaces=ns) == "Müller"
    assert node.find("schema:url", ns).get(f"{{{ns['rdf']}}}resource") == "https://example.org/neg-2"
    turtle = get(client, Accept="text/turtle")
    assert turtle.status_code == 200 and turtle.mimetype == "text/turtle"
    text = turtle.get_data(as_text=True)
    assert "<https://doi.org/10.5555/neg.2> a schema:ScholarlyArticle" in text
    assert '; dcterms:title "Growth of things"' in text and "schema:familyName \"Müller\"" in text
    assert text.rstrip().endswith(".")


def test_citeproc_json_alias(client, indexed):
    response = get(client, Accept="application/citeproc+json")
    assert response.status_code == 200 and json.loads(response.data)["DOI"] == DOI


def test_codes_200_204_404_and_no_metadata_type_redirects(client, svc, indexed):
    register(client, svc, [Article("10.5555/not-indexed")])
    for accept in (RIS, "text/turtle", "application/rdf+xml", "text/x-bibliography"):
        assert get(client, Accept=accept).status_code == 200, accept
        assert get(client, "/10.5555/not-indexed", Accept=accept).status_code == 204, accept
        assert get(client, "/10.5555/missing", Accept=accept).status_code == 404, accept


def test_redirect_carries_validators_and_answers_304(client, svc, indexed):
    first = get(client)
    assert first.status_code == 302
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert first.headers["Cache-Control"] == "public, max-age=3600"  # the value's TTL (86400), capped
    assert first.headers["Access-Control-Allow-Origin"] == "*" and "Accept" in first.headers["Vary"]
    again = get(client, **{"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and "Location" not in again.headers
    assert again.headers["ETag"] == etag and again.headers["Cache-Control"] == "public, max-age=3600"
    assert get(client, **{"If-None-Match": f'"x", W/{etag}'}).status_code == 304
    assert get(client, **{"If-None-Match": '"other"'}).status_code == 302
    assert get(client, **{"If-Modified-Since": modified}).status_code == 304
    assert get(client, **{"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status_code == 302
    assert get(client, **{"If-Modified-Since": "not a date"}).status_code == 302
    register_xml(client, svc, deposit_xml([Article(DOI, url="https://example.org/moved")],
                                          timestamp="20250101000000", batch_id="moved"))
    moved = get(client, **{"If-None-Match": etag})
    assert moved.status_code == 302 and moved.headers["Location"] == "https://example.org/moved"
    assert moved.headers["ETag"] != etag


def test_metadata_has_validators_too(client, indexed):
    first = get(client, Accept=BIBTEX)
    assert first.headers["ETag"] and first.headers["Access-Control-Allow-Origin"] == "*"
    assert get(client, Accept=BIBTEX, **{"If-None-Match": first.headers["ETag"]}).status_code == 304
    other = get(client, Accept=RIS, **{"If-None-Match": first.headers["ETag"]})
    assert other.status_code == 200  # another representation: another validator


def test_max_age_follows_the_handle_ttl(svc, alice):
    from agency.app import create_app
    from agency.services import build_agency

    short = build_agency(svc.settings.replace(handle_ttl=120))
    client = create_app(agency=short).test_client()
    register(client, short, [Article("10.5555/short-ttl")])
    assert get(client, "/10.5555/short-ttl").headers["Cache-Control"] == "public, max-age=120"
    short.db.engine.dispose()


def test_cors_on_public_reads(client, indexed):
    for path, headers in (("/" + DOI, {}), ("/" + DOI, {"Accept": CSL_JSON}), ("/10.5555/missing", {}),
                          ("/api/handles/" + DOI, {}), ("/doiRA/" + DOI, {})):
        assert client.get(path, headers=headers).headers["Access-Control-Allow-Origin"] == "*", path


def test_noredirect_index_type_and_urlappend(client, indexed):
    page = get(client, f"/{DOI}?noredirect")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "https://example.org/neg-2" in html and "HS_ADMIN" in html
    values = get(client, f"/{DOI}?noredirect&index=1", Accept="application/json").get_json()
    assert [(v["index"], v["type"]) for v in values["values"]] == [(1, "URL")]
    assert get(client, f"/{DOI}?index=1").headers["Location"] == "https://example.org/neg-2"
    assert get(client, f"/{DOI}?type=URL").headers["Location"] == "https://example.org/neg-2"
    assert get(client, f"/{DOI}?index=100").status_code == 404  # HS_ADMIN: nothing to redirect to
    assert get(client, f"/{DOI}?type=EMAIL").status_code == 404
    assert get(client, f"/{DOI}?urlappend=%23section-2").headers["Location"] == "https://example.org/neg-2#section-2"
    assert get(client, f"/{DOI}?index=one").status_code == 400
    assert get(client, f"/{DOI}?urlappend=%0Aevil").status_code == 400
    assert get(client, f"/{DOI}?urlappend=" + "a" * 2000).status_code == 400


def test_doi_ra(client, indexed):
    assert client.get("/doiRA/" + DOI).get_json() == [{"DOI": DOI, "RA": "agency"}]
    answers = client.get("/doiRA/10.5555/NEG.1,10.5555/missing").get_json()
    assert answers == [{"DOI": "10.5555/neg.1", "RA": "agency"},
                       {"DOI": "10.5555/missing", "status": "DOI does not exist"}]


def test_handle_api_answers_carry_validators_and_answer_304(client, indexed):
    first = client.get("/api/handles/" + DOI)
    assert first.status_code == 200 and first.headers["Cache-Control"] == "public, max-age=3600"
    assert first.headers["Last-Modified"] and first.headers["Access-Control-Allow-Origin"] == "*"
    again = client.get("/api/handles/" + DOI, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    filtered = client.get("/api/handles/" + DOI + "?index=1", headers={"If-None-Match": first.headers["ETag"]})
    assert filtered.status_code == 200  # another answer, another validator
    assert client.get("/api/handles/" + DOI, headers={"If-Modified-Since": first.headers["Last-Modified"]}
                      ).status_code == 304
    assert "ETag" not in client.get("/api/handles/10.5555/missing").headers
