"""Multipart uploads: several files in one upload are refused, not half-processed; too many parts say so."""

from __future__ import annotations

import html
import io

from sqlalchemy import func, select

from agency.models import Submission
from batchgen import Article, deposit_xml
from conftest import basic_headers

LOGIN = {"operation": "doMDUpload", "login_id": "alice", "login_passwd": "alice-password"}


def _count(svc) -> int:
    with svc.db.sessions() as session:
        return session.scalar(select(func.count()).select_from(Submission))


def _files(*names):
    return [(io.BytesIO(deposit_xml([Article(f"10.5555/multi.{n}")], batch_id=f"multi-{n}")), name)
            for n, name in enumerate(names)]


def test_two_fname_parts_are_refused_and_nothing_is_processed(client, alice, svc):
    response = client.post("/servlet/deposit", data={**LOGIN, "fname": _files("a.xml", "b.xml")},
                           content_type="multipart/form-data")
    assert response.status_code == 400
    text = html.unescape(response.get_data(as_text=True))
    assert "FAILURE" in text and "Several files in one upload" in text and "'b.xml'" in text
    assert _count(svc) == 0


def test_fname_and_mdfile_together_are_several_files_too(client, alice, svc):
    (first,), (second,) = _files("a.xml"), _files("b.xml")
    response = client.post("/servlet/deposit", data={**LOGIN, "fname": first, "mdFile": second},
                           content_type="multipart/form-data")
    assert response.status_code == 400 and "Several files" in response.get_data(as_text=True)


def test_two_query_files_are_refused(client, alice, svc):
    response = client.post("/servlet/deposit", data={**LOGIN, "operation": "doQueryUpload",
                                                     "fname": [(io.BytesIO(b"a|b\n"), "q1.txt"),
                                                               (io.BytesIO(b"c|d\n"), "q2.txt")]},
                           content_type="multipart/form-data")
    assert response.status_code == 400 and "Several files" in response.get_data(as_text=True)
    assert _count(svc) == 0


def test_two_file_parts_on_the_api_are_refused(client, alice, svc):
    response = client.post("/v1/deposits", data={"file": _files("a.xml", "b.xml")},
                           headers=basic_headers("alice", "alice-password", content_type=None),
                           content_type="multipart/form-data")
    assert response.status_code == 400 and "Several files in one upload" in response.get_json()["error"]["message"]
    assert _count(svc) == 0


def test_too_many_parts_says_too_many_parts(client, alice, svc):
    fields = {**LOGIN, **{f"extra{n}": "x" for n in range(svc.settings.max_form_parts + 5)}}
    fields["fname"] = _files("a.xml")[0]
    response = client.post("/servlet/deposit", data=fields, content_type="multipart/form-data")
    assert response.status_code == 413
    text = response.get_data(as_text=True)
    assert "too many parts" in text and f"at most {svc.settings.max_form_parts}" in text
    assert "bytes" not in text


def test_a_too_large_form_field_says_so(client, alice):
    response = client.post("/servlet/deposit", data={**LOGIN, "note": "x" * 600_000,
                                                     "fname": _files("a.xml")[0]},
                           content_type="multipart/form-data")
    assert response.status_code == 413 and "A form field is larger than" in response.get_data(as_text=True)
