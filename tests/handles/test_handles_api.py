"""GET /api/handles/{handle} answers as the Handle.Net REST API does."""

from __future__ import annotations

import re

import pytest
from batchgen import Article

from resolve_data import pending_xml, register, register_xml

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def registered(client, svc, alice):
    register(client, svc, [Article("10.5555/Abc.1", url="https://example.org/abc")])


def test_full_record(client, registered, settings):
    response = client.get("/api/handles/10.5555/Abc.1")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    body = response.get_json()
    assert list(body) == ["responseCode", "handle", "values"]
    assert body["responseCode"] == 1 and body["handle"] == "10.5555/Abc.1"
    url, admin = body["values"]
    assert url["index"] == 1 and url["type"] == "URL"
    assert url["data"] == {"format": "string", "value": "https://example.org/abc"}
    assert url["ttl"] == settings.handle_ttl and ISO.match(url["timestamp"])
    assert admin["index"] == 100 and admin["type"] == "HS_ADMIN"
    assert admin["data"] == {"format": "admin", "value": {"handle": "0.NA/10.5555", "index": 200,
                                                          "permissions": "111111111111"}}
    assert list(url) == ["index", "type", "data", "ttl", "timestamp"]


def test_handle_is_echoed_as_asked_and_case_insensitive(client, registered):
    body = client.get("/api/handles/10.5555/ABC.1").get_json()
    assert body["responseCode"] == 1 and body["handle"] == "10.5555/ABC.1"


FILTERS = [
    ("?type=URL", [1]),
    ("?type=url", [1]),
    ("?type=HS_ADMIN", [100]),
    ("?index=100", [100]),
    ("?index=1&index=100", [1, 100]),
    ("?type=URL&index=100", [1, 100]),  # either a type or an index matches
    ("?type=URL&type=HS_ADMIN", [1, 100]),
]


def test_type_and_index_filters(client, registered):
    for query, indexes in FILTERS:
        body = client.get("/api/handles/10.5555/Abc.1" + query).get_json()
        assert body["responseCode"] == 1, query
        assert [v["index"] for v in body["values"]] == indexes, query


def test_no_matching_values_is_response_code_200(client, registered):
    response = client.get("/api/handles/10.5555/Abc.1?type=EMAIL")
    assert response.status_code == 200
    assert response.get_json() == {"responseCode": 200, "handle": "10.5555/Abc.1", "values": []}
    assert client.get("/api/handles/10.5555/Abc.1?index=7").get_json()["responseCode"] == 200


def test_bad_index_is_400(client, registered):
    response = client.get("/api/handles/10.5555/Abc.1?index=first")
    assert response.status_code == 400
    body = response.get_json()
    assert body["responseCode"] == 2 and "index='first' is not an integer" in body["message"]


def test_handle_not_found_is_100_and_404(client, registered):
    response = client.get("/api/handles/10.5555/nope")
    assert response.status_code == 404
    assert response.get_json() == {"responseCode": 100, "handle": "10.5555/nope"}


def test_prefix_not_served_is_301_and_400(client, registered):
    response = client.get("/api/handles/10.9999/abc")
    assert response.status_code == 400
    body = response.get_json()
    assert body["responseCode"] == 301 and "doesn't live here" in body["message"]
    body = client.get("/api/handles/doi:10.5555/Abc.1").get_json()
    assert body["responseCode"] == 301 and "remove “doi:”" in body["message"]


def test_invalid_handle_is_102_and_400(client, registered):
    for path in ("/api/handles/10.5555", "/api/handles/", "/api/handles", "/api/handles/10.5555/"):
        response = client.get(path)
        assert response.status_code == 400, path
        assert response.get_json()["responseCode"] == 102, path


def test_pending_doi_has_only_its_admin_value(client, svc, alice):
    register_xml(client, svc, pending_xml("10.5555/pending.2"))
    body = client.get("/api/handles/10.5555/pending.2").get_json()
    assert body["responseCode"] == 1
    assert [v["type"] for v in body["values"]] == ["HS_ADMIN"]
    assert client.get("/api/handles/10.5555/pending.2?type=URL").get_json()["responseCode"] == 200


def test_prefix_record(client, registered, settings):
    response = client.get("/api/handles/0.NA/10.5555")
    assert response.status_code == 200
    body = response.get_json()
    assert body["responseCode"] == 1 and body["handle"] == "0.NA/10.5555"
    by_index = {v["index"]: v for v in body["values"]}
    assert by_index[100]["type"] == "HS_ADMIN"
    assert by_index[100]["data"]["value"] == {"handle": "0.NA/10.5555", "index": 200,
                                              "permissions": "111111111111"}
    # The admin group that every DOI's HS_ADMIN points at exists: 0.NA/10.5555 index 200.
    assert by_index[200]["type"] == "HS_VLIST"
    assert by_index[200]["data"] == {"format": "vlist", "value": []}
    assert all(v["ttl"] == settings.handle_ttl and ISO.match(v["timestamp"]) for v in body["values"])
    assert client.get("/api/handles/0.na/10.32013?type=HS_ADMIN").get_json()["responseCode"] == 1


def test_prefix_record_of_a_prefix_not_served(client, registered):
    response = client.get("/api/handles/0.NA/10.9999")
    assert response.status_code == 400
    assert response.get_json()["responseCode"] == 301


def test_pretty_output(client, registered):
    text = client.get("/api/handles/10.5555/Abc.1?pretty").get_data(as_text=True)
    assert text.startswith('{\n  "responseCode": 1,')


def test_odd_handles_through_percent_encoding(client, svc, alice):
    register(client, svc, [Article("10.5555/a#b?c", url="https://example.org/odd")])
    body = client.get("/api/handles/10.5555/a%23b%3Fc").get_json()
    assert body["responseCode"] == 1 and body["handle"] == "10.5555/a#b?c"
    assert body["values"][0]["data"]["value"] == "https://example.org/odd"
