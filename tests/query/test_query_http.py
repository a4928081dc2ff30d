"""HTTP: /v1/queries (sync and jobs), /servlet/query, query uploads through the deposit servlet."""

from __future__ import annotations

import io

from querydata import ALICE_AUTH, BOB_AUTH, index_journal
from sqlalchemy import select

from agency.models import OutboxMessage, RecordResult, Submission

SMALL = ("1234-5679|J Tests|Mueller|1|1|239-245|2024|full_text|q1|\n"
         "|Journal of Tests|Smith|1||250|2023||q2|\n"
         "\n"
         "1234-567|Journal of Tests|Smith|1||250|2023||q3|\n"
         "|Journal of Tests||1||||||\n"
         "k5|10.5555/jt.4\n"
         "|Journal of Tests|Tanaka|9||77|2024||q6|\n")


def post_text(client, body: bytes | str, auth=ALICE_AUTH, **params):
    return client.post("/v1/queries", data=body, query_string=params,
                       headers={**auth, "Content-Type": "text/plain; charset=utf-8"})


def test_small_text_is_answered_in_the_response(client, svc, alice):
    index_journal(client, svc)
    response = post_text(client, SMALL)
    assert response.status_code == 200 and response.mimetype == "text/plain"
    lines = response.get_data(as_text=True).split("\n")
    assert lines[-1] == "" and len(lines[:-1]) == 7
    assert lines[0] == "1234-5679|J Tests|Mueller|1|1|239-245|2024|full_text|q1|10.5555/jt.1"
    assert lines[1] == "|Journal of Tests|Smith|1||250|2023||q2|10.5555/jt.2"
    assert lines[2] == ""
    assert lines[3].startswith("1234-567|Journal of Tests|Smith|1||250|2023||q3||MALFORMED: ")
    assert lines[4].startswith("|Journal of Tests||1||||||" + "|REJECTED: ")
    assert lines[5] == "1234-5679|Journal of Tests|Smith|1|1|301|2024|full_text|k5|10.5555/jt.4".replace("Smith", "Kowalski")
    assert lines[6].startswith("|Journal of Tests|Tanaka|9||77|2024||q6||NO_MATCH")
    assert response.headers["X-Query-Found"] == "3" and response.headers["X-Query-Malformed"] == "1"


def test_auth_and_content_type_errors(client, svc, alice):
    assert client.post("/v1/queries", data="10.5555/x").status_code == 401
    bad = {"Authorization": ALICE_AUTH["Authorization"][:-4] + "AAAA"}
    assert post_text(client, "10.5555/x", auth=bad).status_code == 401
    response = client.post("/v1/queries", data="{}", headers={**ALICE_AUTH, "Content-Type": "application/json"})
    assert response.status_code == 415 and "text/plain" in response.get_json()["error"]["message"]


def test_bad_text_gets_a_clear_error_and_nothing_is_kept(client, svc, alice):
    for body, words in (("10.5555/a\n|Revista de F\xedsica|x|1||2|2001||k|\n".encode("latin-1"), "Line 2"),
                        (b"10.5555/a\x00\n", "NUL"), (b"\n\n", "No query"),
                        (b"x" * 3000, "at most 2000")):
        response = post_text(client, body)
        assert response.status_code == 400 and words in response.get_json()["error"]["message"]
    with svc.db.sessions() as session:
        assert session.scalars(select(Submission)).all() == []


def test_too_many_lines_is_413(client, svc, alice):
    small = svc.settings.replace(query_max_lines=40)
    svc.queries.settings = small
    response = post_text(client, "10.5555/a\n" * 41)
    assert response.status_code == 413 and "40 lines" in response.get_json()["error"]["message"]


def _job_text(count: int) -> str:
    lines = ["|Journal of Tests|Smith|1||250|2024||k%d|" % i for i in range(count - 2)]
    return "\n".join(lines + ["not|a|query", "k|10.5555/jt.3"]) + "\n"


def test_large_file_becomes_a_job_answered_mailed_and_downloadable(client, svc, alice):
    index_journal(client, svc)
    response = client.post("/v1/queries", data={"file": (io.BytesIO(_job_text(45).encode()), "refs.txt")},
                           headers=ALICE_AUTH, content_type="multipart/form-data")
    assert response.status_code == 202
    body = response.get_json()
    job = body["submission_id"]
    assert response.headers["Location"].endswith(f"/v1/queries/{job}") and body["status"] == "queued"
    assert client.get(f"/v1/queries/{job}/result", headers=ALICE_AUTH).status_code == 409
    svc.worker.run_until_idle()
    status = client.get(f"/v1/queries/{job}", headers=ALICE_AUTH).get_json()
    assert status["status"] == "completed"
    assert status["counts"] == {"lines": 45, "found": 44, "ambiguous": 0, "no_match": 0, "malformed": 1,
                                "rejected": 0}
    result = client.get(f"/v1/queries/{job}/result", headers=ALICE_AUTH)
    lines = result.get_data(as_text=True).splitlines()
    assert len(lines) == 45 and lines[0] == "|Journal of Tests|Smith|1||250|2024||k0|10.5555/jt.2"
    assert lines[43].startswith("not|a|query|MALFORMED: wrong field count: 3 fields")
    assert lines[44].endswith("|k|10.5555/jt.3") and lines[44].startswith("1234-5679|Journal of Tests|Nguy")
    with svc.db.sessions() as session:
        submission = session.get(Submission, job)
        assert submission.kind == "query" and submission.file_name == "refs.txt"
        folder = svc.settings.batch_dir / submission.storage_path
        assert (folder / "query.txt").read_text().startswith("|Journal of Tests|")
        assert (folder / "result.txt").read_text().splitlines() == lines
        mail = session.scalars(select(OutboxMessage)).one()
        assert mail.recipients == "alice@example.org" and mail.attachment_type == "text/plain"
        assert mail.attachment_path == f"{submission.storage_path}/result.txt"
        assert "DOI found:    44" in mail.text_body and f"submission {job}" in mail.subject
    # The job is alice's: bob does not see it.
    assert client.get(f"/v1/queries/{job}", headers=BOB_AUTH).status_code == 401
    listed = client.get("/v1/queries", headers=ALICE_AUTH).get_json()["queries"]
    assert [q["submission_id"] for q in listed] == [job]


def test_job_of_another_account_is_not_found(client, svc, alice, bob):
    response = post_text(client, _job_text(40))
    job = response.get_json()["submission_id"]
    assert client.get(f"/v1/queries/{job}", headers=BOB_AUTH).status_code == 404
    assert client.get(f"/v1/queries/{job}/result", headers=BOB_AUTH).status_code == 404


def test_job_resumes_after_a_lost_slice_without_writing_twice(client, svc, alice):
    index_journal(client, svc)
    svc.worker.runners["query"].settings = svc.settings.replace(chunk_records=10, worker_slice_records=10)
    job = post_text(client, _job_text(35)).get_json()["submission_id"]
    assert svc.worker.run_once()  # one slice: 10 lines
    runner = svc.worker.runners["query"]
    runner._open.clear()  # as after a restart: the next slice re-reads the file from line 11
    svc.worker.run_until_idle()
    with svc.db.sessions() as session:
        seqs = list(session.scalars(select(RecordResult.seq).where(RecordResult.submission_id == job)
                                    .order_by(RecordResult.seq)))
    assert seqs == list(range(1, 36))
    lines = client.get(f"/v1/queries/{job}/result", headers=ALICE_AUTH).get_data(as_text=True).splitlines()
    assert len(lines) == 35 and lines[20].endswith("|k20|10.5555/jt.2")


def test_servlet_query_answers_piped(client, svc, alice):
    index_journal(client, svc)
    qdata = "|Journal of Tests|Smith|1||250|2024||a|\nb|10.5555/jt.1\n10.5555/none"
    response = client.get("/servlet/query", query_string={"usr": "alice", "pwd": "alice-password",
                                                          "format": "piped", "qdata": qdata})
    assert response.status_code == 200 and response.mimetype == "text/plain"
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0].endswith("|a|10.5555/jt.2")
    assert lines[1] == "1234-5679|Journal of Tests|Müller|1|1|239|2024|full_text|b|10.5555/jt.1"
    assert lines[2] == "10.5555/none|NO_MATCH: 10.5555/none is not registered here"
    posted = client.post("/servlet/query", data={"usr": "alice", "pwd": "alice-password", "qdata": qdata})
    assert posted.get_data() == response.get_data()


def test_servlet_query_errors(client, svc, alice):
    base = {"usr": "alice", "pwd": "alice-password"}
    assert client.get("/servlet/query", query_string={"usr": "alice", "pwd": "x", "qdata": "10.1/x"}).status_code == 401
    assert client.get("/servlet/query", query_string=base).status_code == 400
    response = client.get("/servlet/query", query_string={**base, "format": "unixref", "qdata": "10.1/x"})
    assert response.status_code == 400 and "piped" in response.get_data(as_text=True)
    response = client.get("/servlet/query", query_string={**base, "qdata": "10.1/x\n" * 31})
    assert response.status_code == 413 and "doQueryUpload" in response.get_data(as_text=True)
    response = client.get("/servlet/query", query_string={**base, "qdata": "10.1/\x00x"})
    assert response.status_code == 400 and "NUL" in response.get_data(as_text=True)


def test_servlet_query_uploads_are_jobs_retrievable_like_logs(client, svc, alice):
    index_journal(client, svc)
    for operation, text in (("doQueryUpload", "|Journal of Tests|Smith|1||250|2024||a|\n"),
                            ("doDOIQueryUpload", "x|10.5555/jt.2\n")):
        response = client.post("/servlet/deposit", content_type="multipart/form-data", data={
            "operation": operation, "login_id": "alice", "login_passwd": "alice-password",
            "fname": (io.BytesIO(text.encode()), f"{operation}.txt")})
        assert response.status_code == 200 and "SUCCESS" in response.get_data(as_text=True)
        job = int(response.headers["X-Submission-Id"])
        assert f"/v1/queries/{job}/result" in response.get_data(as_text=True)
        pending = client.get("/servlet/submissionDownload", query_string={
            "usr": "alice", "pwd": "alice-password", "file_name": f"{operation}.txt", "type": "result"})
        assert pending.mimetype == "text/xml" and "queued" in pending.get_data(as_text=True)
        svc.worker.run_until_idle()
        result = client.get("/servlet/submissionDownload", query_string={
            "usr": "alice", "pwd": "alice-password", "file_name": f"{operation}.txt", "type": "result"})
        assert result.mimetype == "text/plain" and result.get_data(as_text=True).rstrip().endswith("|10.5555/jt.2")
        contents = client.get("/servlet/submissionDownload", query_string={
            "usr": "alice", "pwd": "alice-password", "file_name": f"{operation}.txt", "type": "contents"})
        assert contents.get_data(as_text=True) == text
    with svc.db.sessions() as session:
        assert len(session.scalars(select(OutboxMessage)).all()) == 2


def test_servlet_query_upload_errors(client, svc, alice):
    response = client.post("/servlet/deposit", content_type="multipart/form-data", data={
        "operation": "doQueryUpload", "login_id": "alice", "login_passwd": "alice-password"})
    assert response.status_code == 400 and "fname" in response.get_data(as_text=True)
    response = client.post("/servlet/deposit", content_type="multipart/form-data", data={
        "operation": "doQueryUpload", "login_id": "alice", "login_passwd": "alice-password",
        "fname": (io.BytesIO("caf\xe9|10.1/x\n".encode("latin-1")), "q.txt")})
    assert response.status_code == 400 and "UTF-8" in response.get_data(as_text=True)
    response = client.post("/servlet/deposit", content_type="multipart/form-data", data={
        "operation": "doQueryUpload", "login_id": "alice", "login_passwd": "nope",
        "fname": (io.BytesIO(b"10.1/x\n"), "q.txt")})
    assert response.status_code == 401
