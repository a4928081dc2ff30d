"""Resource-only deposits: parts of existing DOIs, through /v1/deposits and the servlet's doDOICitUpload."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import select

from conftest import basic_headers
from logcheck import log_records, parse_valid_log
from recordsdata import (
    citations_item, collection_item, funding_item, licence_item, post_resources, register, resources_xml,
)

from agency.models import MetadataResource

ALICE = basic_headers("alice", "alice-password")
VERSIONS = json.loads(open("schemas/crossref/resources-catalog.json").read())


def _messages(body: dict) -> list[tuple[str, str, str]]:
    return [(r["doi"], r["status"], r["msg"]) for r in body["records"]]


def test_each_part_gets_the_message_crossref_users_know(svc, client, alice, bob):
    register(svc, client, ["10.5555/a1", "10.5555/a2"])
    register(svc, client, ["10.6666/b1"], login="bob", password="bob-password")
    body = post_resources(svc, client, resources_xml([
        funding_item("10.5555/a1"), licence_item("10.5555/a1"), citations_item("10.5555/a2"),
        collection_item("10.5555/a2", ["https://mirror.example.org/a2"]),
        funding_item("10.5555/never-registered"), funding_item("10.6666/b1"), funding_item("not a doi")]))
    assert _messages(body)[:4] == [
        ("10.5555/a1", "Success", "FundRef Resources processed successfully"),
        ("10.5555/a1", "Success", "License-ref Resources processed successfully"),
        ("10.5555/a2", "Success", "Resources processed successfully"),
        ("10.5555/a2", "Success", "Resources processed successfully")]
    unknown, other, invalid = body["records"][4:]
    assert unknown["status"] == "Failure" and "DOI not found" in unknown["msg"] and "deposit its full" in unknown["msg"]
    assert other["status"] == "Failure" and "belongs to another account" in other["msg"]
    assert invalid["status"] == "Failure" and "Invalid DOI" in invalid["msg"]
    assert body["counts"] == {"record_count": 7, "success_count": 4, "warning_count": 0, "failure_count": 3,
                              "records_done": 7}
    log = parse_valid_log(client.get(body["links"]["log"].replace("http://localhost", ""), headers=ALICE).data)
    assert len(log_records(log)) == 7


def test_collection_urls_reach_the_handle_record_at_once_and_the_primary_url_stays(svc, client, alice):
    register(svc, client, ["10.5555/mr"])
    post_resources(svc, client, resources_xml([
        collection_item("10.5555/mr", ["https://one.example.org/x", "https://two.example.org/x"]),
        collection_item("10.5555/mr", ["https://tdm.example.org/x.pdf"], prop="text-mining")]))
    values = client.get("/api/handles/10.5555/mr").get_json()["values"]
    loc = next(v for v in values if v["type"] == "10320/loc")
    assert "https://one.example.org/x" in loc["data"]["value"] and "https://two.example.org/x" in loc["data"]["value"]
    assert "tdm.example.org" not in loc["data"]["value"]  # a text-mining collection is not a resolution target
    assert client.get("/10.5555/mr").headers["Location"] == "https://example.org/articles/mr"


def test_a_bad_collection_url_fails_its_record_alone(svc, client, alice):
    register(svc, client, ["10.5555/u1", "10.5555/u2"])
    body = post_resources(svc, client, resources_xml([collection_item("10.5555/u1", ["javascript:alert(1)"]),
                                                      collection_item("10.5555/u2", ["https://ok.example.org/"])]))
    assert [r["status"] for r in body["records"]] == ["Failure", "Success"]
    assert "Invalid resource URL" in body["records"][0]["msg"]


def test_metadata_index_takes_the_parts_at_its_next_load(svc, client, alice):
    register(svc, client, ["10.5555/m1"])
    post_resources(svc, client, resources_xml([funding_item("10.5555/m1"), citations_item("10.5555/m1"),
                                               funding_item("10.5555/missing")]))
    with svc.db.sessions() as session:
        assert session.scalars(select(MetadataResource)).all() == []  # not before the load
    report = svc.mddb.run(mail=False)
    assert not report.failed, report.summary
    with svc.db.sessions() as session:
        parts = {(r.doi, r.part): r.xml for r in session.scalars(select(MetadataResource))}
    assert set(parts) == {("10.5555/m1", "fundref_data"), ("10.5555/m1", "doi_citations")}
    assert "Smith 2001" in parts[("10.5555/m1", "doi_citations")]


@pytest.mark.parametrize("version", sorted(v.rsplit("/", 1)[-1] for v in VERSIONS))
def test_every_published_namespace_version_is_taken(svc, client, alice, version):
    register(svc, client, ["10.5555/v"])
    body = post_resources(svc, client, resources_xml([funding_item("10.5555/v")], version=version))
    assert body["records"][0]["status"] == "Success"


def test_an_unknown_resource_namespace_is_refused_saying_which_are_known(svc, client, alice):
    response = client.post("/v1/deposits", data=resources_xml([funding_item("10.5555/v")], version="9.9.9"),
                           headers=ALICE)
    assert response.status_code == 422
    message = response.get_json()["refusal"]["errors"][0]["message"]
    assert "9.9.9" in message and "4.4.2" in message and "5.4.0" in message


def test_servlet_doDOICitUpload(svc, client, alice):
    register(svc, client, ["10.5555/s1"])
    form = {"operation": "doDOICitUpload", "login_id": "alice", "login_passwd": "alice-password",
            "fname": (io.BytesIO(resources_xml([licence_item("10.5555/s1")])), "res.xml")}
    response = client.post("/servlet/deposit", data=form, content_type="multipart/form-data")
    assert response.status_code == 200 and b"SUCCESS" in response.data
    svc.worker.run_until_idle()
    submission_id = response.headers["X-Submission-Id"]
    body = client.get(f"/v1/deposits/{submission_id}", headers=ALICE).get_json()
    assert _messages(body) == [("10.5555/s1", "Success", "License-ref Resources processed successfully")]


def test_a_resource_batch_resumes_from_its_file_after_each_chunk(svc, client, alice):
    register(svc, client, [f"10.5555/z{i}" for i in range(5)])
    runner = svc.worker.runners["deposit"]
    runner.settings = svc.settings.replace(chunk_records=2, worker_slice_records=2)
    response = client.post("/v1/deposits", data=resources_xml([funding_item(f"10.5555/z{i}") for i in range(5)]),
                           headers=basic_headers("alice", "alice-password"))
    slices = 0
    while svc.worker.run_once():
        runner._open.clear()  # as if another worker (or a restarted one) took the next slice
        runner._primed.clear()
        slices += 1
    body = client.get(response.headers["Location"], headers=ALICE).get_json()
    assert slices == 3
    assert [(r["seq"], r["doi"], r["status"]) for r in body["records"]] == [
        (i + 1, f"10.5555/z{i}", "Success") for i in range(5)]


def _locations(client, doi: str) -> str | None:
    values = client.get(f"/api/handles/{doi}").get_json()["values"]
    return next((v["data"]["value"] for v in values if v["type"] == "10320/loc"), None)


def _lock(doi: str, state: str, prop: str | None = None, urls: tuple[str, ...] = ()) -> str:
    items = "".join(f"<item><resource>{u}</resource></item>" for u in urls)
    attribute = f' property="{prop}"' if prop else ""
    return (f"<doi_resources><doi>{doi}</doi><collection{attribute} multi-resolution=\"{state}\">{items}"
            "</collection></doi_resources>")


def test_multiple_resolution_lock_and_unlock_are_kept_on_the_handle_record(svc, client, alice):
    register(svc, client, ["10.5555/lk", "10.5555/lk2"])
    # A bare unlock: stored, shown with the handle's values, no URL yet.
    body = post_resources(svc, client, resources_xml([_lock("10.5555/lk", "unlock")]))
    assert body["records"][0]["status"] == "Success"
    assert 'multi-resolution="unlock"' in _locations(client, "10.5555/lk")
    assert "<location " not in _locations(client, "10.5555/lk")
    # URLs deposited later keep the state; a later bare lock keeps the URLs.
    post_resources(svc, client, resources_xml([collection_item("10.5555/lk", ["https://mirror.example.org/lk"])]))
    value = _locations(client, "10.5555/lk")
    assert 'multi-resolution="unlock"' in value and "https://mirror.example.org/lk" in value
    post_resources(svc, client, resources_xml([_lock("10.5555/lk", "lock")]))
    value = _locations(client, "10.5555/lk")
    assert 'multi-resolution="lock"' in value and "unlock" not in value and "https://mirror.example.org/lk" in value
    noredirect = client.get("/10.5555/lk?noredirect").data.decode()
    assert "multi-resolution" in noredirect and "mirror.example.org/lk" in noredirect
    # A list-based collection carrying the state and URLs sets both; emptying it keeps only the state.
    post_resources(svc, client, resources_xml([_lock("10.5555/lk2", "unlock", "list-based",
                                                     ("https://a.example.org/2",))]))
    value = _locations(client, "10.5555/lk2")
    assert 'multi-resolution="unlock"' in value and "https://a.example.org/2" in value
    post_resources(svc, client, resources_xml([collection_item("10.5555/lk2", [])]))
    value = _locations(client, "10.5555/lk2")
    assert 'multi-resolution="unlock"' in value and "a.example.org" not in value
    # Resolution still goes to the primary URL.
    assert client.get("/10.5555/lk").headers["Location"] == "https://example.org/articles/lk"


def test_without_a_lock_state_an_emptied_collection_removes_the_value(svc, client, alice):
    register(svc, client, ["10.5555/nl"])
    post_resources(svc, client, resources_xml([collection_item("10.5555/nl", ["https://m.example.org/nl"])]))
    assert "multi-resolution" not in _locations(client, "10.5555/nl")
    post_resources(svc, client, resources_xml([collection_item("10.5555/nl", [])]))
    assert _locations(client, "10.5555/nl") is None
