"""Crossref-compatible servlet: /servlet/deposit and /servlet/submissionDownload."""

from __future__ import annotations

import io
import re

from lxml import html as lxml_html

from batchgen import deposit_xml, many
from logcheck import log_records, parse_valid_log


def upload(client, data: bytes, fields: dict | None = None, part: str = "fname", name: str = "batch.xml"):
    form = {"operation": "doMDUpload", "login_id": "alice", "login_passwd": "alice-password"}
    form.update(fields or {})
    form = {k: v for k, v in form.items() if v is not None}
    form[part] = (io.BytesIO(data), name)
    return client.post("/servlet/deposit", data=form, content_type="multipart/form-data")


def title(response) -> str:
    return lxml_html.fromstring(response.data).findtext(".//title")


def test_success_page_is_exactly_what_crossref_clients_look_for(client, alice):
    response = upload(client, deposit_xml(many("10.5555", 1), batch_id="ojs-1"))
    assert response.status_code == 200
    assert title(response) == "SUCCESS"
    text = response.data.decode()
    assert "Your batch submission was successfully received." in text
    submission_id = re.search(r'id="submission-id">(\d+)<', text).group(1)
    assert f"/v1/deposits/{submission_id}" in text
    assert response.headers["X-Submission-Id"] == submission_id


def test_alternate_field_names_usr_pwd_and_mdfile(client, alice):
    response = upload(client, deposit_xml(many("10.5555", 1)),
                      {"login_id": None, "login_passwd": None, "usr": "alice", "pwd": "alice-password"},
                      part="mdFile")
    assert response.status_code == 200 and title(response) == "SUCCESS"


def test_wrong_password_is_failure_401(client, alice, svc):
    response = upload(client, deposit_xml(many("10.5555", 1)), {"login_passwd": "nope"})
    assert response.status_code == 401
    assert title(response) == "FAILURE"
    assert "Login failed" in response.data.decode()
    assert not list(svc.settings.batch_dir.rglob("batch.xml"))


def test_unknown_operation_lists_the_supported_ones(client, alice):
    response = upload(client, deposit_xml(many("10.5555", 1)), {"operation": "doTransferDOIs"})
    assert response.status_code == 400 and title(response) == "FAILURE"
    assert "doMDUpload" in response.data.decode() and "doTransferDOIs" in response.data.decode()


def test_missing_file_is_failure_400(client, alice):
    response = client.post("/servlet/deposit", data={"operation": "doMDUpload", "login_id": "alice",
                                                     "login_passwd": "alice-password"},
                           content_type="multipart/form-data")
    assert response.status_code == 400 and "fname" in response.data.decode()


def test_invalid_batch_is_failure_with_each_error(client, alice):
    bad = deposit_xml(many("10.5555", 1)).replace(b"<year>2024</year></publication_date>\n        <pages>",
                                                  b"<year>x</year></publication_date>\n        <pages>")
    response = upload(client, bad)
    assert response.status_code == 422 and title(response) == "FAILURE"
    errors = lxml_html.fromstring(response.data).findall(".//ol[@id='errors']/li")
    assert len(errors) == 1 and "line 18" in errors[0].text_content()


def test_submission_download_follows_queued_then_completed(client, alice, svc):
    upload(client, deposit_xml(many("10.5555", 2), batch_id="dl-1"), name="dl.xml")
    params = {"usr": "alice", "pwd": "alice-password", "doi_batch_id": "dl-1", "type": "result"}
    queued = parse_valid_log(client.get("/servlet/submissionDownload", query_string=params).data)
    assert queued.get("status") == "queued"
    svc.worker.run_until_idle()
    done = parse_valid_log(client.get("/servlet/submissionDownload", query_string=params).data)
    assert done.get("status") == "completed"
    assert [r[0] for r in log_records(done)] == ["Success", "Success"]
    by_name_params = {k: v for k, v in params.items() if k != "doi_batch_id"}
    by_name = client.get("/servlet/submissionDownload", query_string={**by_name_params, "file_name": "dl.xml"})
    assert by_name.data == client.get("/servlet/submissionDownload", query_string=params).data
    contents = client.get("/servlet/submissionDownload", query_string={**params, "type": "contents"})
    assert contents.data == deposit_xml(many("10.5555", 2), batch_id="dl-1")


def test_submission_download_in_process_status(client, alice, svc):
    from sqlalchemy import update

    from agency.models import Submission

    upload(client, deposit_xml(many("10.5555", 1), batch_id="busy"))
    with svc.db.transaction() as session:
        session.execute(update(Submission).values(status="processing"))
    params = {"usr": "alice", "pwd": "alice-password", "doi_batch_id": "busy"}
    assert parse_valid_log(client.get("/servlet/submissionDownload", query_string=params).data) \
        .get("status") == "in_process"


def test_submission_download_unknown_and_foreign_files(client, alice, bob):
    client.post("/servlet/deposit", data={"operation": "doMDUpload", "login_id": "bob", "login_passwd": "bob-password",
                                          "fname": (io.BytesIO(deposit_xml(many("10.6666", 1), batch_id="bobs")),
                                                    "b.xml")}, content_type="multipart/form-data")
    for batch_id in ("nothing-like-this", "bobs"):
        response = client.get("/servlet/submissionDownload",
                              query_string={"usr": "alice", "pwd": "alice-password", "doi_batch_id": batch_id})
        root = parse_valid_log(response.data)
        assert root.get("status") == "unknown_submission"
        assert b"10.6666" not in response.data


def test_submission_download_needs_credentials_and_a_name(client, alice):
    assert client.get("/servlet/submissionDownload", query_string={"usr": "alice", "pwd": "x",
                                                                  "doi_batch_id": "a"}).status_code == 401
    assert client.get("/servlet/submissionDownload", query_string={"usr": "alice",
                                                                  "pwd": "alice-password"}).status_code == 400


def test_failure_page_escapes_what_came_from_the_file(client, alice):
    hostile = deposit_xml(many("10.5555", 1)).replace(
        b"<year>2024</year></publication_date>\n        <pages>",
        b"<year>&lt;script&gt;alert(1)&lt;/script&gt;</year></publication_date>\n        <pages>")
    response = upload(client, hostile)
    assert response.status_code == 422
    assert b"<script>" not in response.data
    assert b"&lt;script&gt;alert(1)" in response.data
