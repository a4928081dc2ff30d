"""/v1 listings page with a cursor; every /v1 error has one shape; the pending cap's default is Crossref's."""

from __future__ import annotations

from conftest import basic_headers
from batchgen import deposit_xml, many

from agency.config import Settings

ALICE = basic_headers("alice", "alice-password")
ALICE_TEXT = basic_headers("alice", "alice-password", "text/plain")


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.data
    body = response.get_json()
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code and body["error"]["message"]
    return body["error"]


def test_deposit_listing_pages_through_everything_once_with_a_cursor(client, alice):
    for n in range(5):
        client.post("/v1/deposits", data=deposit_xml(many("10.5555", 1), batch_id=f"b{n}"), headers=ALICE)
    seen, url = [], "/v1/deposits?limit=2"
    while url:
        response = client.get(url, headers=ALICE)
        body = response.get_json()
        seen.extend(s["doi_batch_id"] for s in body["submissions"])
        assert len(body["submissions"]) <= 2
        if body["next_cursor"]:
            assert f"cursor={body['next_cursor']}" in response.headers["Link"] and 'rel="next"' in response.headers["Link"]
            url = f"/v1/deposits?limit=2&cursor={body['next_cursor']}"
        else:
            assert "Link" not in response.headers
            url = None
    assert seen == ["b4", "b3", "b2", "b1", "b0"]


def test_query_listing_pages_too(client, svc, alice):
    svc_lines = svc.settings.query_sync_lines + 1
    text = "".join(f"1234-5679|Journal|Smith|1|1|{n}|2024|full_text|k{n}|\n" for n in range(svc_lines))
    for _ in range(3):
        assert client.post("/v1/queries", data=text, headers=ALICE_TEXT).status_code == 202
    first = client.get("/v1/queries?limit=2", headers=ALICE).get_json()
    second = client.get(f"/v1/queries?limit=2&cursor={first['next_cursor']}", headers=ALICE).get_json()
    assert len(first["queries"]) == 2 and len(second["queries"]) == 1 and second["next_cursor"] is None
    ids = [q["submission_id"] for q in first["queries"] + second["queries"]]
    assert len(set(ids)) == 3 and ids == sorted(ids, reverse=True)


def test_a_cursor_not_handed_out_is_a_clear_400(client, alice):
    for cursor in ("garbage", "Zm9vfGJhcg", "%00"):
        _error(client.get(f"/v1/deposits?cursor={cursor}", headers=ALICE), 400, "invalid_cursor")
        _error(client.get(f"/v1/queries?cursor={cursor}", headers=ALICE), 400, "invalid_cursor")


def test_errors_across_v1_share_one_shape(client, alice):
    _error(client.get("/v1/deposits"), 401, "unauthorized")
    _error(client.get("/v1/deposits/999", headers=ALICE), 404, "not_found")
    _error(client.get("/v1/deposits/99999999999999999999999", headers=ALICE), 404, "not_found")
    _error(client.get("/v1/queries/5", headers=ALICE), 404, "not_found")
    _error(client.get("/v1/nothing-here"), 404, "not_found")
    _error(client.delete("/v1/deposits"), 405, "method_not_allowed")
    _error(client.post("/v1/deposits", data=b"x", headers=basic_headers("alice", "alice-password", "image/png")),
           415, "unsupported_media_type")
    refused = client.post("/v1/deposits", data=b"<doi_batch><unclosed", headers=ALICE)
    error = _error(refused, 400, "malformed_batch")
    assert error["details"]["errors"][0]["line"] and refused.get_json()["status"] == "refused"


def test_servlet_keeps_its_crossref_style_pages(client, alice):
    response = client.post("/servlet/deposit", data={"login_id": "alice", "login_passwd": "wrong"})
    assert response.status_code == 401 and response.mimetype == "text/html" and b"FAILURE" in response.data


def test_pending_cap_defaults_to_crossrefs_ten_thousand():
    assert Settings().max_pending_per_account == 10_000
