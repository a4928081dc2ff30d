"""The MDS API through the Flask test client: DataCite's endpoints, status codes and plain-text answers."""

from __future__ import annotations

import pytest

from agency.app import create_app
from agency.datacite.kernel4 import MAX_METADATA_BYTES
from batchgen import Article, deposit_xml
from conftest import basic_headers
from dcgen import record_xml

DOI = "10.5555/dc-1"
XML = "application/xml;charset=UTF-8"
TEXT = "text/plain;charset=UTF-8"


def alice_headers(content_type: str | None = None) -> dict:
    return basic_headers("alice", "alice-password", content_type)


@pytest.fixture
def mds(client, alice):
    """(method, path, body, content type) → response, as alice."""
    def call(method: str, path: str, body: bytes | str | None = None, content_type: str | None = None,
             headers: dict | None = None):
        return client.open("/mds" + path, method=method, data=body,
                           headers=headers or alice_headers(content_type))
    return call


def minted(mds, doi: str = DOI, url: str = "https://data.example.org/1") -> None:
    assert mds("POST", "/metadata", record_xml(doi), XML).status_code == 201
    assert mds("PUT", f"/doi/{doi}", f"doi={doi}\r\nurl={url}", TEXT).status_code == 201


def test_metadata_draft_mint_list_hide_delete(mds, client):
    response = mds("POST", "/metadata", record_xml(), XML)
    assert (response.status_code, response.text) == (201, f"OK ({DOI})")
    assert response.headers["Location"] == f"http://localhost/mds/metadata/{DOI}"
    assert response.mimetype == "text/plain"
    assert mds("GET", f"/doi/{DOI}").status_code == 204  # a draft: known, not minted
    assert mds("GET", "/doi").status_code == 204
    assert client.get(f"/{DOI}").status_code == 404  # drafts do not resolve

    response = mds("PUT", f"/doi/{DOI}", f"doi={DOI}\nurl=https://data.example.org/1", TEXT)
    assert (response.status_code, response.text) == (201, "OK")
    assert mds("GET", f"/doi/{DOI}").text == "https://data.example.org/1"
    assert client.get(f"/{DOI}").headers["Location"] == "https://data.example.org/1"
    assert mds("GET", "/doi").text == f"{DOI}\n"
    got = mds("GET", f"/metadata/{DOI}")
    assert got.status_code == 200 and got.mimetype == "application/xml" and got.data == record_xml()

    assert mds("DELETE", f"/metadata/{DOI}").text == "OK"  # hidden: still resolves
    assert client.get(f"/{DOI}").status_code == 302
    response = mds("DELETE", f"/doi/{DOI}")
    assert response.status_code == 405 and "only draft DOIs can be deleted" in response.text

    assert mds("PUT", "/metadata/10.5555/dc-2", record_xml("10.5555/dc-2"), XML).status_code == 201
    assert mds("DELETE", "/doi/10.5555/dc-2").status_code == 200
    assert mds("GET", "/doi/10.5555/dc-2").status_code == 404


def test_post_doi_and_media(mds):
    mds("POST", "/metadata", record_xml(), XML)
    assert mds("POST", "/doi", f"url=ftp://files.example.org/x\ndoi={DOI}\n", TEXT).status_code == 201
    assert mds("GET", f"/media/{DOI}").status_code == 404
    body = "application/pdf=https://example.org/a.pdf\r\ntext/csv=https://example.org/a.csv"
    assert mds("POST", f"/media/{DOI}", body, TEXT).text == "OK"
    assert mds("GET", f"/media/{DOI}").text == \
        "application/pdf=https://example.org/a.pdf\ntext/csv=https://example.org/a.csv\n"
    bad = mds("POST", f"/media/{DOI}", "pdf=https://example.org/a.pdf", TEXT)
    assert bad.status_code == 400 and "mime type" in bad.text


def test_credentials(mds, client):
    response = client.post("/mds/metadata", data=record_xml(), headers={"Content-Type": XML})
    assert response.status_code == 401 and "WWW-Authenticate" in response.headers and "HTTP Basic" in response.text
    response = mds("GET", "/doi", headers=basic_headers("alice", "wrong"))
    assert response.status_code == 401


@pytest.mark.parametrize("content_type", [None, "application/json", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_wrong_content_type_for_metadata(mds, content_type):
    response = mds("POST", "/metadata", record_xml(), content_type)
    assert response.status_code == 415 and "application/xml" in response.text
    if content_type and "form" in content_type:
        assert "Form fields are not read here" in response.text


def test_form_encoded_doi_body(mds):
    mds("POST", "/metadata", record_xml(), XML)
    response = mds("PUT", f"/doi/{DOI}", f"doi={DOI}&url=https://x.example.org/",
                   "application/x-www-form-urlencoded")
    assert response.status_code == 415 and "text/plain" in response.text


def test_invalid_xml_kernel3_and_unknown_namespace(mds):
    response = mds("POST", "/metadata", b"<resource><identifier>", XML)
    assert response.status_code == 400 and "well-formed" in response.text and "line 1" in response.text
    response = mds("POST", "/metadata", record_xml(namespace="http://datacite.org/schema/kernel-3"), XML)
    assert response.status_code == 400 and "Convert it to kernel-4" in response.text
    response = mds("POST", "/metadata", record_xml(namespace="urn:example"), XML)
    assert response.status_code == 400 and "urn:example" in response.text
    response = mds("POST", "/metadata", record_xml(resource_type=""), XML)
    assert response.status_code == 422 and "resourceType" in response.text


def test_identifier_mismatch(mds):
    response = mds("PUT", "/metadata/10.5555/other", record_xml(), XML)
    assert response.status_code == 400 and "is not the DOI in the URL" in response.text
    assert mds("GET", "/metadata/10.5555/other").status_code == 404


def test_another_accounts_prefix(mds, client, bob):
    response = mds("POST", "/metadata", record_xml("10.6666/x"), XML)
    assert response.status_code == 403 and "10.6666 is not one of this account's prefixes" in response.text
    minted(mds)
    for method, path in (("GET", f"/metadata/{DOI}"), ("GET", f"/doi/{DOI}"), ("DELETE", f"/metadata/{DOI}")):
        response = client.open("/mds" + path, method=method, headers=basic_headers("bob", "bob-password"))
        assert response.status_code == 403, (method, path)


@pytest.mark.parametrize("url", ["mailto:x@example.org", "gopher://example.org/", "example.org/x"])
def test_url_not_http_or_ftp(mds, url):
    mds("POST", "/metadata", record_xml(), XML)
    response = mds("PUT", f"/doi/{DOI}", f"doi={DOI}\nurl={url}", TEXT)
    assert response.status_code == 400 and "http://, https:// or ftp://" in response.text


def test_doi_line_not_matching_path(mds):
    mds("POST", "/metadata", record_xml(), XML)
    response = mds("PUT", f"/doi/{DOI}", "doi=10.5555/dc-9\nurl=https://x.example.org/", TEXT)
    assert response.status_code == 400 and "is not the DOI in the URL" in response.text
    assert mds("GET", f"/doi/{DOI}").status_code == 204  # still a draft


@pytest.mark.parametrize("body, missing", [(f"doi={DOI}", "url="), ("url=https://x.example.org/", "doi="),
                                           ("", "doi= and url="), (f"doi={DOI}\nurl=", "url=")])
def test_missing_lines_in_doi_body(mds, body, missing):
    mds("POST", "/metadata", record_xml(), XML)
    response = mds("POST", "/doi", body, TEXT)
    assert response.status_code == 400 and f"the {missing} line" in response.text


def test_unexpected_line_in_doi_body(mds):
    response = mds("POST", "/doi", f"doi={DOI}\nurl=https://x.example.org/\nfoo=bar", TEXT)
    assert response.status_code == 400 and "exactly two lines" in response.text


def test_url_before_metadata(mds):
    response = mds("PUT", f"/doi/{DOI}", f"doi={DOI}\nurl=https://x.example.org/", TEXT)
    assert response.status_code == 412 and "POST its DataCite XML to /metadata" in response.text


def test_metadata_over_one_megabyte(mds):
    body = record_xml(extra="<descriptions><description>" + "x" * MAX_METADATA_BYTES + "</description></descriptions>")
    response = mds("POST", "/metadata", body, XML)
    assert response.status_code == 413 and str(MAX_METADATA_BYTES) in response.text
    assert mds("GET", f"/metadata/{DOI}").status_code == 404


def test_crossref_doi_refused_by_mds(mds, deposit):
    deposit(deposit_xml([Article("10.5555/cr-1")]))
    response = mds("POST", "/metadata", record_xml("10.5555/cr-1"), XML)
    assert response.status_code == 403 and "Crossref interface" in response.text


def test_a_crossref_deposit_of_an_mds_draft_is_refused_and_the_draft_mints_later(mds, deposit, client):
    """A draft is not in the handle store yet; the deposit must still see it is DataCite's."""
    assert mds("POST", "/metadata", record_xml("10.5555/draft-1"), XML).status_code == 201
    _, records = deposit(deposit_xml([Article("10.5555/draft-1"), Article("10.5555/plain-1")]))
    assert [(r["doi"], r["status"]) for r in records] == [("10.5555/draft-1", "Failure"), ("10.5555/plain-1", "Success")]
    assert "DataCite MDS API" in records[0]["msg"]
    assert client.get("/10.5555/draft-1").status_code == 404  # the deposit registered nothing
    assert mds("PUT", "/doi/10.5555/draft-1", "doi=10.5555/draft-1\r\nurl=https://data.example.org/d",
               TEXT).status_code == 201
    assert client.get("/10.5555/draft-1").headers["Location"] == "https://data.example.org/d"


def test_unknown_mds_path_is_plain_text(mds):
    response = mds("GET", "/nothing-here")
    assert response.status_code == 404 and response.mimetype == "text/plain"


def test_mds_at_root_on_an_mds_host(svc, alice):
    app = create_app(svc.settings.replace(mds_hosts="mds.example.org"), agency=svc)
    client = app.test_client()
    headers = {**alice_headers(XML), "Host": "mds.example.org"}
    response = client.post("/metadata", data=record_xml(), headers=headers)
    assert response.status_code == 201
    assert response.headers["Location"] == f"http://mds.example.org/metadata/{DOI}"
    response = client.put(f"/doi/{DOI}", data=f"doi={DOI}\nurl=https://d.example.org/",
                          headers={**alice_headers(TEXT), "Host": "mds.example.org"})
    assert response.status_code == 201
    # other hosts: / is the resolver, not the MDS
    assert client.get(f"/{DOI}", headers={"Host": "doi.example.org"}).status_code == 302
    assert client.get("/doi", headers={**alice_headers(), "Host": "doi.example.org"}).status_code != 200


def test_every_accepted_metadata_body_is_kept_under_batches_and_linked(svc, mds, client, alice, cli_environment,
                                                                       capsys):
    """Nothing received is lost: each accepted body is a completed submission whose folder keeps it byte for
    byte; the DOI and its indexed record name the latest; refused bodies leave nothing; the index can be
    rebuilt from the files."""
    import hashlib

    from sqlalchemy import select

    from agency.cli import main
    from agency.models import DataciteDoi, MetadataRecord, RecordResult, Submission

    first = record_xml()
    second = record_xml(title="A data set, second version")
    assert mds("POST", "/metadata", first, XML).status_code == 201
    assert mds("PUT", f"/doi/{DOI}", f"doi={DOI}\nurl=https://data.example.org/1", TEXT).status_code == 201
    assert mds("PUT", f"/metadata/{DOI}", second, XML).status_code == 201
    assert mds("POST", "/metadata", b"<not-xml", XML).status_code == 400  # refused: not kept
    assert mds("POST", "/metadata", record_xml("10.6666/not-hers"), XML).status_code == 403
    with svc.db.sessions() as session:
        kept = session.scalars(select(Submission).where(Submission.kind == "mds-metadata")
                               .order_by(Submission.id)).all()
        assert [(s.operation, s.status, s.account_id) for s in kept] == [
            ("mds-metadata-post", "completed", alice.id), ("mds-metadata-put", "completed", alice.id)]
        for submission, body in zip(kept, (first, second)):
            path = svc.settings.batch_dir / submission.storage_path / "datacite.xml"
            assert submission.storage_path.startswith(f"alice/{submission.received_at:%Y/%m}/")
            assert path.read_bytes() == body
            assert (submission.byte_size, submission.sha256) == (len(body), hashlib.sha256(body).hexdigest())
        results = session.execute(select(RecordResult.submission_id, RecordResult.doi, RecordResult.message)
                                  .order_by(RecordResult.submission_id)).all()
        assert results == [(kept[0].id, DOI, "DataCite metadata stored (draft)"),
                           (kept[1].id, DOI, "DataCite metadata stored (findable)")]
        assert session.scalar(select(DataciteDoi.submission_id)) == kept[1].id
        record = session.scalars(select(MetadataRecord)).one()
        assert (record.submission_id, record.batch_folder) == (kept[1].id, kept[1].storage_path)
        assert record.title == "A data set, second version"
    assert len(list(svc.settings.batch_dir.rglob("datacite.xml"))) == 2
    # Rebuilt from the files: the index loses its rows, the kept body brings them back.
    with svc.db.transaction() as session:
        session.execute(MetadataRecord.__table__.delete())
    assert client.get(f"/{DOI}", headers={"Accept": "application/vnd.citationstyles.csl+json"}).status_code != 200
    assert main(["datacite", "reindex", "--prefix", "10.5555"]) == 0
    assert "1 findable DataCite DOI(s) indexed again" in capsys.readouterr().out
    csl = client.get(f"/{DOI}", headers={"Accept": "application/vnd.citationstyles.csl+json"}).get_json()
    assert csl["title"] == "A data set, second version" and csl["URL"] == "https://data.example.org/1"
