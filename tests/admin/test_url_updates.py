"""Bulk URL updates: POST /v1/url-updates and the servlet's doTransferDOIsUpload."""

from __future__ import annotations

import io

from sqlalchemy import select

from conftest import basic_headers
from logcheck import log_records, parse_valid_log
from recordsdata import register

from agency.models import AuditEvent, OutboxMessage

ALICE_TEXT = basic_headers("alice", "alice-password", "text/plain")
ALICE = basic_headers("alice", "alice-password", None)


def _post(svc, client, data: bytes, headers=ALICE_TEXT) -> dict:
    response = client.post("/v1/url-updates", data=data, headers=headers)
    assert response.status_code == 202, response.get_json()
    assert response.headers["Location"].endswith(f"/v1/url-updates/{response.get_json()['submission_id']}")
    svc.worker.run_until_idle()
    return client.get(response.headers["Location"], headers=ALICE).get_json()


def test_each_line_updates_or_fails_alone(svc, client, alice, bob):
    register(svc, client, ["10.5555/u1", "10.5555/u2", "10.5555/u3"])
    register(svc, client, ["10.6666/b1"], login="bob", password="bob-password")
    text = ("10.5555/u1\thttps://new.example.org/u1\n"
            "10.5555/u2 https://no-tab.example.org/\n"
            "10.5555/u3\tnot a url\n"
            "10.5555/nope\thttps://new.example.org/nope\n"
            "10.6666/b1\thttps://new.example.org/b1\n"
            "10.5555/U1\thttps://again.example.org/u1\n"
            "10.5555/u3\thttps://new.example.org/u3\n")
    body = _post(svc, client, text.encode())
    results = [(r["seq"], r["status"], r["msg"]) for r in body["records"]]
    assert results[0] == (1, "Success", "URL updated to https://new.example.org/u1")
    assert "No tab" in results[1][2] and "Invalid URL" in results[2][2]
    assert "DOI not found" in results[3][2] and "another account" in results[4][2]
    assert "Duplicate DOI" in results[5][2] and "line 1" in results[5][2]
    assert results[6][1] == "Success"
    assert [s for _, s, _ in results].count("Success") == 2
    assert client.get("/10.5555/u1").headers["Location"] == "https://new.example.org/u1"
    assert client.get("/10.5555/u3").headers["Location"] == "https://new.example.org/u3"
    assert client.get("/10.6666/b1").headers["Location"] == "https://example.org/articles/b1"
    log = parse_valid_log(client.get(body["links"]["log"].replace("http://localhost", ""), headers=ALICE).data)
    assert len(log_records(log)) == 7
    result = client.get(body["links"]["result"].replace("http://localhost", ""), headers=ALICE).data.decode()
    assert result.splitlines()[0] == "1\t10.5555/u1\tSuccess\tURL updated to https://new.example.org/u1"
    with svc.db.sessions() as session:
        mail = session.scalars(select(OutboxMessage).where(OutboxMessage.key == f"url-update-{body['submission_id']}")).one()
        assert "Updated: 2" in mail.text_body and "Failed: 5" in mail.text_body
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "urls.update")).one()
        assert event.after == {"lines": 7, "updated": 2, "failed": 5} and event.actor == "account:alice"


def test_crlf_bom_and_blank_lines(svc, client, alice):
    register(svc, client, ["10.5555/c1", "10.5555/c2"])
    data = "\ufeff10.5555/c1\thttps://crlf.example.org/1\r\n\r\n   \r\n10.5555/c2\thttps://crlf.example.org/2\r\n"
    body = _post(svc, client, data.encode("utf-8"))
    assert [(r["seq"], r["status"]) for r in body["records"]] == [(1, "Success"), (4, "Success")]
    assert client.get("/10.5555/c2").headers["Location"] == "https://crlf.example.org/2"


def test_bad_files_are_refused_before_anything_is_kept(svc, client, alice):
    for data, status, phrase in ((b"", 400, "empty"), (b"\n\n  \n", 400, "blank"),
                                 (b"10.5555/x\t\xff\xfe\n", 400, "UTF-8")):
        response = client.post("/v1/url-updates", data=data, headers=ALICE_TEXT)
        assert response.status_code == status, response.get_json()
        assert phrase in response.get_json()["error"]["message"]
    assert client.post("/v1/url-updates", data=b"x", headers=basic_headers("alice", "alice-password",
                                                                            "application/json")).status_code == 415
    assert client.post("/v1/url-updates", data=b"x", headers={"Content-Type": "text/plain"}).status_code == 401
    assert not list(svc.settings.batch_dir.rglob("urls.txt"))


def test_too_many_lines_is_413(svc, client, alice):
    svc.url_updates.settings = svc.settings.replace(url_update_max_lines=3)
    response = client.post("/v1/url-updates", data=b"a\tb\n" * 4, headers=ALICE_TEXT)
    assert response.status_code == 413 and "limit" in response.get_json()["error"]["message"]


def test_a_hundred_thousand_lines_multipart_and_wait(svc, client, alice):
    register(svc, client, [f"10.5555/big{i}" for i in range(50)])
    lines = [f"10.5555/big{i % 50}\thttps://moved.example.org/{i}" for i in range(100_000)]
    form = {"file": (io.BytesIO("\n".join(lines).encode()), "moves.txt")}
    response = client.post("/v1/url-updates", data=form, headers=ALICE, content_type="multipart/form-data")
    assert response.status_code == 202
    svc.worker.run_until_idle(timeout=600)
    body = client.get(response.headers["Location"], headers=ALICE).get_json()
    assert body["counts"]["record_count"] == 100_000 and body["counts"]["success_count"] == 50
    assert body["file_name"] == "moves.txt" and len(body["records"]) == 100_000
    assert client.get("/10.5555/big7").headers["Location"] == "https://moved.example.org/7"


def test_servlet_doTransferDOIsUpload(svc, client, alice):
    register(svc, client, ["10.5555/t1"])
    form = {"operation": "doTransferDOIsUpload", "login_id": "alice", "login_passwd": "alice-password",
            "fname": (io.BytesIO(b"10.5555/t1\thttps://servlet.example.org/t1\n"), "urls.txt")}
    response = client.post("/servlet/deposit", data=form, content_type="multipart/form-data")
    assert response.status_code == 200 and b"SUCCESS" in response.data
    svc.worker.run_until_idle()
    assert client.get("/10.5555/t1").headers["Location"] == "https://servlet.example.org/t1"
    log = client.get("/servlet/submissionDownload?usr=alice&pwd=alice-password&file_name=urls.txt&type=result")
    assert log_records(parse_valid_log(log.data))[0][0] == "Success"


CSL = {"Accept": "application/vnd.citationstyles.csl+json"}


def _indexed_url(svc, doi: str) -> str | None:
    from agency.handles.doi_syntax import doi_key
    from agency.models import MetadataRecord

    with svc.db.sessions() as session:
        return session.scalar(select(MetadataRecord.url).where(MetadataRecord.doi_key == doi_key(doi)))


def test_the_metadata_index_takes_the_new_url_with_the_handle(svc, client, alice):
    """Metadata pages (content negotiation) answer the URL the DOI resolves to, not the deposited one."""
    register(svc, client, ["10.5555/ix1", "10.5555/ix2"])
    assert not svc.mddb.run(mail=False).failed
    assert client.get("/10.5555/ix1", headers=CSL).get_json()["URL"] == "https://example.org/articles/ix1"
    body = _post(svc, client, b"10.5555/ix1\thttps://moved.example.org/ix1\n10.5555/ix2\tnot a url\n")
    assert [r["status"] for r in body["records"]] == ["Success", "Failure"]
    assert _indexed_url(svc, "10.5555/ix1") == "https://moved.example.org/ix1"
    assert client.get("/10.5555/ix1", headers=CSL).get_json()["URL"] == "https://moved.example.org/ix1"
    assert _indexed_url(svc, "10.5555/ix2") == "https://example.org/articles/ix2"  # its line failed: unchanged


def test_a_url_update_before_the_metadata_load_is_not_undone_by_it(svc, client, alice):
    """The deposit's metadata is loaded after the URL update ran: the index takes the handle's URL."""
    register(svc, client, ["10.5555/late"])
    assert _indexed_url(svc, "10.5555/late") is None  # not loaded yet
    _post(svc, client, b"10.5555/late\thttps://moved.example.org/late\n")
    assert not svc.mddb.run(mail=False).failed
    assert _indexed_url(svc, "10.5555/late") == "https://moved.example.org/late"
    assert client.get("/10.5555/late", headers=CSL).get_json()["URL"] == "https://moved.example.org/late"
