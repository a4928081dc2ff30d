"""Handle.Net REST writes: PUT / DELETE /api/handles/{handle}, listings, authentication, HTTPS only."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest
from batchgen import Article

from agency.admin.audit import events
from agency.app import create_app
from hdl_wire import PREFIX_SECRET, make_prefix_record
from resolve_data import register


def basic(user: str = "300%3A0.NA%2F10.5555", secret: str = PREFIX_SECRET) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode(),
            "Content-Type": "application/json"}


URL_VALUE = {"index": 1, "type": "URL", "data": {"format": "string", "value": "https://example.org/r"}}


@pytest.fixture
def writable(settings, alice, svc):
    make_prefix_record(svc)
    app = create_app(agency=dataclasses.replace(svc, settings=settings.replace(handle_rest_insecure_writes=True)))
    return app.test_client()


def test_put_creates_then_replaces_and_deletes(writable, svc):
    created = writable.put("/api/handles/10.5555/rest.1", data=json.dumps({"values": [URL_VALUE]}), headers=basic())
    assert created.status_code == 201 and created.get_json() == {"responseCode": 1, "handle": "10.5555/rest.1"}
    record = writable.get("/api/handles/10.5555/rest.1").get_json()
    assert record["values"][0]["data"]["value"] == "https://example.org/r"
    again = writable.put("/api/handles/10.5555/rest.1?overwrite=false", data=json.dumps({"values": [URL_VALUE]}),
                         headers=basic())
    assert again.status_code == 409 and again.get_json()["responseCode"] == 101
    email = {"index": 2, "type": "EMAIL", "data": "a@example.org"}
    added = writable.put("/api/handles/10.5555/rest.1?index=2", data=json.dumps({"values": [email]}),
                         headers=basic())
    assert added.status_code == 201 and added.get_json()["responseCode"] == 1
    taken = writable.put("/api/handles/10.5555/rest.1?index=2&overwrite=false", data=json.dumps([email]),
                         headers=basic())
    assert taken.status_code == 409 and taken.get_json()["responseCode"] == 201
    removed = writable.delete("/api/handles/10.5555/rest.1?index=2", headers=basic())
    assert removed.status_code == 200
    assert [v["index"] for v in writable.get("/api/handles/10.5555/rest.1").get_json()["values"]] == [1, 100]
    gone = writable.delete("/api/handles/10.5555/rest.1", headers=basic())
    assert gone.status_code == 200 and gone.get_json()["responseCode"] == 1
    assert writable.get("/api/handles/10.5555/rest.1").status_code == 404
    assert writable.delete("/api/handles/10.5555/rest.1", headers=basic()).status_code == 404
    with svc.db.sessions() as session:
        actions = [e.action for e in events(session, subject="handle:10.5555/rest.1")]
    assert actions[0] == "handle.create" and actions[-1] == "handle.delete"


def test_mint_new_suffix(writable):
    minted = writable.put("/api/handles/10.5555/?mintNewSuffix=true", data=json.dumps([URL_VALUE]), headers=basic())
    assert minted.status_code == 201
    handle = minted.get_json()["handle"]
    assert handle.startswith("10.5555/") and len(handle) > 20
    assert writable.get("/api/handles/" + handle).status_code == 200


def test_authentication(writable, settings):
    body = json.dumps([URL_VALUE])
    missing = writable.put("/api/handles/10.5555/a", data=body, headers={"Content-Type": "application/json"})
    assert missing.status_code == 401 and missing.get_json()["responseCode"] == 402
    assert missing.headers["WWW-Authenticate"].startswith("Basic")
    wrong = writable.put("/api/handles/10.5555/a", data=body, headers=basic(secret="not-it"))
    assert wrong.status_code == 403 and wrong.get_json()["responseCode"] == 403
    malformed_user = writable.put("/api/handles/10.5555/a", data=body, headers=basic(user="alice"))
    assert malformed_user.status_code == 403
    for _ in range(settings.handle_auth_failures):
        writable.put("/api/handles/10.5555/a", data=body, headers=basic(secret="not-it"))
    throttled = writable.put("/api/handles/10.5555/a", data=body, headers=basic())  # even the right one, for now
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0


def test_writes_need_https_unless_allowed(client, svc, alice):
    make_prefix_record(svc)
    plain = client.put("/api/handles/10.5555/a", data=json.dumps([URL_VALUE]), headers=basic())
    assert plain.status_code == 403 and "HTTPS" in plain.get_json()["message"]
    secure = client.put("/api/handles/10.5555/a", data=json.dumps([URL_VALUE]), headers=basic(),
                        base_url="https://localhost")
    assert secure.status_code == 201


def test_another_prefix_and_bad_values(writable, svc, bob):
    make_prefix_record(svc, "10.6666", "bob", secret="bob-prefix-secret")
    bobs = basic("300%3A0.NA%2F10.6666", "bob-prefix-secret")
    refused = writable.put("/api/handles/10.5555/bob-was-here", data=json.dumps([URL_VALUE]), headers=bobs)
    assert refused.status_code == 403 and refused.get_json()["responseCode"] == 400
    elsewhere = writable.put("/api/handles/10.9999/x", data=json.dumps([URL_VALUE]), headers=basic())
    assert elsewhere.status_code == 400 and elsewhere.get_json()["responseCode"] == 301
    for bad in ("not json", json.dumps({"values": "x"}), json.dumps([{"index": -1, "type": "URL", "data": "x"}]),
                json.dumps([{"index": 1, "type": "", "data": "x"}]),
                json.dumps([{"index": 1, "type": "URL", "data": {"format": "base64", "value": "%%%"}}]),
                json.dumps([URL_VALUE, URL_VALUE])):
        response = writable.put("/api/handles/10.5555/bad", data=bad, headers=basic())
        assert response.status_code == 400 and response.get_json()["responseCode"] == 202, bad
    assert writable.get("/api/handles/10.5555/bad").status_code == 404
    bad_handle = writable.put("/api/handles/10.5555/a%01b", data=json.dumps([URL_VALUE]), headers=basic())
    assert bad_handle.status_code == 400 and bad_handle.get_json()["responseCode"] == 102


def test_secret_values_and_listing(writable, client, svc):
    register(client, svc, [Article("10.5555/Listed.1", url="https://example.org/l")])
    record = writable.get("/api/handles/0.NA/10.5555").get_json()
    assert 300 not in [v["index"] for v in record["values"]]  # HS_SECKEY has no public read
    writable.put("/api/handles/10.5555/listed.2", data=json.dumps([URL_VALUE]), headers=basic())
    listing = writable.get("/api/handles?prefix=10.5555", headers=basic())
    assert listing.status_code == 200
    body = listing.get_json()
    assert body["responseCode"] == 1 and body["totalCount"] == "2"
    assert sorted(body["handles"]) == ["10.5555/Listed.1", "10.5555/listed.2"]
    paged = writable.get("/api/handles?prefix=10.5555&page=1&pageSize=1", headers=basic()).get_json()
    assert paged["page"] == 1 and paged["pageSize"] == 1 and len(paged["handles"]) == 1
    assert writable.get("/api/handles?prefix=10.5555").status_code == 401
    assert writable.get("/api/handles?prefix=10.5555&page=-1", headers=basic()).status_code == 400
    prefixes = writable.get("/api/prefixes").get_json()
    assert prefixes == {"responseCode": 1, "prefixes": ["10.32013", "10.5555"]}


def test_prefix_pages_walk_every_handle_once_in_order_from_the_index(writable, client, svc):
    from sql_statements import sqlite_plan, statements_starting

    register(client, svc, [Article(f"10.5555/Page.{n}", url=f"https://example.org/p{n}") for n in (3, 10, 1, 7, 2)])
    for n in range(3):
        writable.put(f"/api/handles/10.5555/put.{n}", data=json.dumps([URL_VALUE]), headers=basic())
    pages, page = [], 0
    with statements_starting(svc.db.engine, "SELECT handles.name") as seen:
        while True:
            body = writable.get(f"/api/handles?prefix=10.5555&page={page}&pageSize=3", headers=basic()).get_json()
            if not body["handles"]:
                break
            assert len(body["handles"]) <= 3 and body["totalCount"] == "8"
            pages.append(body["handles"])
            page += 1
    names = [name for p in pages for name in p]
    assert len(pages) == 3 and len(names) == 8
    assert [name.lower() for name in names] == sorted(name.lower() for name in names)  # key order, each once
    assert {name.lower() for name in names} == {f"10.5555/page.{n}" for n in (1, 2, 3, 7, 10)} | {
        f"10.5555/put.{n}" for n in range(3)}
    if svc.db.dialect == "sqlite":
        plan = " ".join(sqlite_plan(svc.db.engine, *seen[-1]))
        assert "COVERING INDEX ix_handles_prefix_key" in plan, plan  # skipped entries are index steps, not rows
