"""Aliases: /v1/aliases, the servlet's forced-aliasing files, and what an alias changes elsewhere."""

from __future__ import annotations

import io

from sqlalchemy import select

from batchgen import Article, deposit_xml
from conftest import basic_headers
from logcheck import log_records, parse_valid_log
from recordsdata import funding_item, post_resources, register, resources_xml

from agency.handles.store import MAX_ALIAS_HOPS
from agency.models import AuditEvent

ALICE = basic_headers("alice", "alice-password", None)


def _alias(client, primary: str, alias: str, headers=ALICE):
    return client.post("/v1/aliases", json={"primary": primary, "alias": alias}, headers=headers)


def test_alias_resolves_to_the_primary_and_shows_hs_alias(svc, client, alice):
    register(svc, client, ["10.5555/x", "10.5555/y"])
    response = _alias(client, "10.5555/y", "10.5555/x")
    assert response.status_code == 201, response.get_json()
    assert client.get("/10.5555/x").headers["Location"] == "https://example.org/articles/y"
    values = client.get("/api/handles/10.5555/x").get_json()["values"]
    alias = next(v for v in values if v["type"] == "HS_ALIAS")
    assert alias["data"]["value"] == "10.5555/y"
    with svc.db.sessions() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "doi.alias")).one()
        assert event.subject == "doi:10.5555/x" and event.after == {"alias_of": "10.5555/y"}
    undo = client.delete("/v1/aliases/10.5555/x", headers=ALICE)
    assert undo.status_code == 200 and undo.get_json()["was_alias_of"] == "10.5555/y"
    assert client.get("/10.5555/x").headers["Location"] == "https://example.org/articles/x"
    assert client.delete("/v1/aliases/10.5555/x", headers=ALICE).status_code == 404


def test_chains_are_followed_cycles_and_self_aliases_refused(svc, client, alice):
    register(svc, client, ["10.5555/c1", "10.5555/c2", "10.5555/c3"])
    assert _alias(client, "10.5555/c3", "10.5555/c2").status_code == 201
    assert _alias(client, "10.5555/c2", "10.5555/c1").status_code == 201
    assert client.get("/10.5555/c1").headers["Location"] == "https://example.org/articles/c3"
    cycle = _alias(client, "10.5555/c1", "10.5555/c3")
    assert cycle.status_code == 409 and "cycle" in cycle.get_json()["error"]["message"]
    itself = _alias(client, "10.5555/c1", "10.5555/C1")
    assert itself.status_code == 400 and "itself" in itself.get_json()["error"]["message"]


def test_chains_longer_than_the_bound_are_refused(svc, client, alice):
    dois = [f"10.5555/l{i}" for i in range(MAX_ALIAS_HOPS + 2)]
    register(svc, client, dois)
    for i in range(MAX_ALIAS_HOPS):
        assert _alias(client, dois[i + 1], dois[i]).status_code == 201
    assert client.get(f"/{dois[0]}").headers["Location"] == f"https://example.org/articles/l{MAX_ALIAS_HOPS}"
    too_long = _alias(client, dois[0], dois[-1])
    assert too_long.status_code == 409 and "chain" in too_long.get_json()["error"]["message"]


def test_only_own_existing_dois(svc, client, alice, bob):
    register(svc, client, ["10.5555/own"])
    register(svc, client, ["10.6666/bob"], login="bob", password="bob-password")
    assert _alias(client, "10.6666/bob", "10.5555/own").status_code == 404
    assert _alias(client, "10.5555/nothing", "10.5555/own").status_code == 404
    assert _alias(client, "10.5555/own", "not-a-doi").status_code == 400
    assert client.post("/v1/aliases", data="x", headers=ALICE).status_code == 400
    assert client.post("/v1/aliases", json={}, headers={}).status_code == 401


def test_updates_to_an_alias_are_refused_naming_the_primary(svc, client, alice):
    register(svc, client, ["10.5555/p", "10.5555/a"])
    _alias(client, "10.5555/p", "10.5555/a")
    response = client.post("/v1/deposits", data=deposit_xml([Article("10.5555/a")], timestamp="20250101000000"),
                           headers=basic_headers("alice", "alice-password"))
    svc.worker.run_until_idle()
    record = client.get(response.headers["Location"], headers=ALICE).get_json()["records"][0]
    assert record["status"] == "Failure" and "alias of 10.5555/p" in record["msg"]
    body = post_resources(svc, client, resources_xml([funding_item("10.5555/a")]))
    assert body["records"][0]["status"] == "Failure" and "alias of 10.5555/p" in body["records"][0]["msg"]
    urls = client.post("/v1/url-updates", data=b"10.5555/a\thttps://x.example.org/\n",
                       headers=basic_headers("alice", "alice-password", "text/plain"))
    svc.worker.run_until_idle()
    line = client.get(urls.headers["Location"], headers=ALICE).get_json()["records"][0]
    assert line["status"] == "Failure" and "10.5555/p" in line["msg"]


def test_piped_queries_answer_the_primary(svc, client, alice):
    headers = basic_headers("alice", "alice-password")
    client.post("/v1/deposits", data=deposit_xml([Article("10.5555/q1", first_page="11"),
                                                  Article("10.5555/q2", first_page="22", title="Other")]),
                headers=headers)
    svc.worker.run_until_idle()
    svc.mddb.run(mail=False)
    text = headers | {"Content-Type": "text/plain"}
    query = b"1234-5679|Journal of Tests|Smith|||11|2024|full_text|key1|\n"
    assert client.post("/v1/queries", data=query, headers=text).data.decode().rstrip().endswith("|10.5555/q1")
    _alias(client, "10.5555/q2", "10.5555/q1")
    assert client.post("/v1/queries", data=query, headers=text).data.decode().rstrip().endswith("|10.5555/q2")


def test_an_ambiguous_answer_between_a_doi_and_its_alias_is_the_primary(svc, client, alice):
    """The same article registered twice (the reason aliases exist): once aliased, the query that
    could not choose between the two DOIs answers the primary; unaliased, it is ambiguous again."""
    headers = basic_headers("alice", "alice-password")
    client.post("/v1/deposits", data=deposit_xml([Article("10.5555/twice.1", first_page="44"),
                                                  Article("10.5555/twice.2", first_page="44")]), headers=headers)
    svc.worker.run_until_idle()
    svc.mddb.run(mail=False)
    text = headers | {"Content-Type": "text/plain"}
    query = b"1234-5679|Journal of Tests|Smith|1|1|44|2024|full_text|key1|\n"

    def answer() -> str:
        return client.post("/v1/queries", data=query, headers=text).data.decode().rstrip()

    ambiguous = answer()
    assert "10.5555/twice.1" in ambiguous and "10.5555/twice.2" in ambiguous  # both offered, neither chosen
    _alias(client, "10.5555/twice.1", "10.5555/twice.2")
    assert answer().endswith("|10.5555/twice.1") and "twice.2" not in answer()
    assert client.delete("/v1/aliases/10.5555/twice.2", headers=headers).status_code in (200, 204)
    assert answer() == ambiguous


def test_servlet_forced_aliasing_file_and_unalias(svc, client, alice):
    register(svc, client, ["10.5555/f1", "10.5555/f2", "10.5555/f3"])
    text = ("H:email=ops@example.org;op=force_alias;delim=tab\n"
            "10.5555/f1\t10.5555/f2\n10.5555/f1\t10.5555/f1\n10.5555/f1\t10.5555/missing\n")
    form = {"operation": "doMDUpload", "subType": "cm", "login_id": "alice", "login_passwd": "alice-password",
            "fname": (io.BytesIO(text.encode()), "alias.txt")}
    response = client.post("/servlet/deposit", data=form, content_type="multipart/form-data")
    assert response.status_code == 200 and b"SUCCESS" in response.data
    assert client.get("/10.5555/f2").headers["Location"] == "https://example.org/articles/f1"
    log = client.get("/servlet/submissionDownload?usr=alice&pwd=alice-password&file_name=alias.txt&type=result")
    records = log_records(parse_valid_log(log.data))
    assert [r[0] for r in records] == ["Success", "Failure", "Failure"]
    assert "itself" in records[1][2] and "not a DOI of this account" in records[2][2]
    undo = {"operation": "doMDUpload", "subType": "cm", "login_id": "alice", "login_passwd": "alice-password",
            "fname": (io.BytesIO(b"H:email=ops@example.org;op=unalias;delim=tab\n10.5555/f1\t10.5555/f2\n"),
                      "unalias.txt")}
    assert client.post("/servlet/deposit", data=undo, content_type="multipart/form-data").status_code == 200
    assert client.get("/10.5555/f2").headers["Location"] == "https://example.org/articles/f2"
    bad = {"operation": "doMDUpload", "subType": "cm", "login_id": "alice", "login_passwd": "alice-password",
           "fname": (io.BytesIO(b"10.5555/f1\t10.5555/f2\n"), "noheader.txt")}
    refused = client.post("/servlet/deposit", data=bad, content_type="multipart/form-data")
    assert refused.status_code == 400 and b"H:email=" in refused.data
