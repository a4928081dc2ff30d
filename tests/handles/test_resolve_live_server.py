"""Against a real server process: pyhandle (a Handle.Net client nobody here wrote) and raw hostile bytes."""

from __future__ import annotations

import json

import pytest
from batchgen import Article

from resolve_data import pending_xml, register, register_xml
from resolve_server import raw_request, running_server

pytestmark = pytest.mark.slow

pyhandle = pytest.importorskip("pyhandle", reason="pyhandle is in the test extra: pip install -e '.[test]'")
from pyhandle.handleclient import PyHandleClient  # noqa: E402
from pyhandle.handleexceptions import GenericHandleError, HandleNotFoundException  # noqa: E402

URL = "https://example.org/landing/py"


@pytest.fixture
def server(client, svc, settings, alice):
    register(client, svc, [Article("10.5555/py.1", url=URL), Article("10.32013/Py-2", url=URL + "2")])
    register_xml(client, svc, pending_xml("10.5555/py.pending"))
    svc.db.engine.dispose()  # the server process reads the same database from now on
    with running_server(settings) as base:
        yield base


def test_pyhandle_reads_records_over_http(server):
    handles = PyHandleClient("rest").instantiate_for_read_access(handle_server_url=server, HTTPS_verify=False)
    record = handles.retrieve_handle_record("10.5555/py.1")
    assert record["URL"] == URL
    admin = json.loads(record["HS_ADMIN"].replace("'", '"'))
    assert admin == {"handle": "0.NA/10.5555", "index": 200, "permissions": "111111111111"}
    assert handles.get_value_from_handle("10.32013/Py-2", "URL") == URL + "2"

    full = handles.retrieve_handle_record_json("10.5555/py.1")
    assert full["responseCode"] == 1 and [v["index"] for v in full["values"]] == [1, 100]
    only_url = handles.retrieve_handle_record_json("10.5555/py.1", indices=[1])
    assert [v["type"] for v in only_url["values"]] == ["URL"]
    by_type = handles.retrieve_handle_record_json("10.5555/py.1", type="HS_ADMIN")
    assert [v["index"] for v in by_type["values"]] == [100]

    # Missing, pending and prefix records, and a prefix served elsewhere.
    assert handles.retrieve_handle_record("10.5555/nope") is None
    with pytest.raises(HandleNotFoundException):
        handles.get_value_from_handle("10.5555/nope", "URL")
    assert handles.get_value_from_handle("10.5555/py.pending", "URL") is None
    prefix = handles.retrieve_handle_record("0.NA/10.5555")
    assert set(prefix) == {"HS_ADMIN", "HS_VLIST"}
    empty = handles.retrieve_handle_record_json("10.5555/py.1", type="EMAIL")
    assert empty["responseCode"] == 200 and empty["values"] == []
    with pytest.raises(GenericHandleError):  # 301 "That prefix doesn't live here", HTTP 400
        handles.retrieve_handle_record("10.9999/elsewhere")


HOSTILE_LINES = [
    (b"GET /%FF%FE HTTP/1.1", {400}, b"UTF-8"),
    (b"GET /10.5555/\xff\xfe HTTP/1.1", {400}, b"Bad"),  # raw bytes: the server refuses them itself
    (b"GET /10.5555/a%00b HTTP/1.1", {400}, b"control character"),
    (b"GET /../../../etc/passwd HTTP/1.1", {404}, b"not a DOI"),
    (b"GET /10.5555/..%2F..%2Fetc%2Fpasswd HTTP/1.1", {404}, b"DOI Not Found"),
    (b"GET /10.5555/" + b"x" * 3000 + b" HTTP/1.1", {400}, b"characters long"),
    (b"GET /10.5555/" + b"x" * 70000 + b" HTTP/1.1", {400, 414, 431}, b""),  # the server's own limit
    (b"GET /api/handles/%FF HTTP/1.1", {400}, b'"responseCode": 102'),
]


def test_real_server_redirects_and_survives_hostile_bytes(server):
    status, body = raw_request(server, b"GET /doi:10.5555/PY.1 HTTP/1.1")
    assert status == 302
    status, body = raw_request(server, b"HEAD /10.5555/py.1 HTTP/1.1")
    assert status == 302 and body == b""
    for line, statuses, words in HOSTILE_LINES:
        status, body = raw_request(server, line)
        assert status in statuses, (line[:60], body[:300])
        assert words in body, line[:60]
        assert b"Traceback" not in body and b"root:" not in body
    status, _ = raw_request(server, b"GET /10.5555/py.1 HTTP/1.1")
    assert status == 302  # still serving
