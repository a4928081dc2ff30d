"""Bodies against a real server process: refused from the headers, before the body is sent."""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests

from live_server import agency_env, start_server

pytestmark = pytest.mark.slow
LIMIT = 100_000


@pytest.fixture
def server(tmp_path, database_url):
    live = start_server(agency_env(tmp_path, database_url, AGENCY_MAX_BATCH_BYTES=str(LIMIT)), "--demo")
    yield live
    live.stop()


def _headers_only(server, head: str) -> tuple[int, dict, bytes, float]:
    """Send only the request head (a body is announced but never sent); the answer and how long it took."""
    host, port = server.url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n\r\n")
        received = b""
        while b"\r\n\r\n" not in received or not _complete(received):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    elapsed = time.monotonic() - started
    head_part, _, body = received.partition(b"\r\n\r\n")
    lines = head_part.decode("latin-1").split("\r\n")
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body, elapsed


def _complete(received: bytes) -> bool:
    head, _, body = received.partition(b"\r\n\r\n")
    for line in head.decode("latin-1").split("\r\n"):
        if line.lower().startswith("content-length:"):
            return len(body) >= int(line.split(":")[1])
    return False


def _credentials(server) -> tuple[str, str]:
    line = next(line for line in server.output if line.startswith("demo account"))
    return line.split("'")[1], line.split("'")[3]


def test_no_credentials_is_401_before_the_body_is_read(server):
    status, headers, body, elapsed = _headers_only(
        server, f"POST /v1/deposits HTTP/1.1\nHost: x\nContent-Type: application/xml\nContent-Length: {LIMIT - 1}")
    assert status == 401 and headers["www-authenticate"].startswith("Basic")
    assert "HTTP Basic" in json.loads(body)["error"]["message"]
    assert elapsed < 10  # answered without waiting for a body that never comes
    status, *_ = _headers_only(
        server, "POST /v1/queries HTTP/1.1\nHost: x\nContent-Type: text/plain\nTransfer-Encoding: chunked")
    assert status == 401


def test_too_large_content_length_is_413_before_the_body_is_read(server):
    login, password = _credentials(server)
    import base64

    token = base64.b64encode(f"{login}:{password}".encode()).decode()
    for path in ("/v1/deposits", "/servlet/deposit"):
        status, _headers, body, _elapsed = _headers_only(
            server, f"POST {path} HTTP/1.1\nHost: x\nAuthorization: Basic {token}\n"
                    f"Content-Type: application/xml\nContent-Length: {LIMIT * 50}")
        assert status == 413, body
        assert f"limit of {LIMIT} bytes" in json.loads(body)["error"]["message"]


def test_a_chunked_body_past_the_limit_is_cut_off(server):
    login, password = _credentials(server)

    def endless():
        for _ in range(1000):
            yield b"x" * 65536

    try:
        response = requests.post(server.url + "/v1/deposits", auth=(login, password), data=endless(),
                                 headers={"Content-Type": "application/xml"}, timeout=30)
    except requests.ConnectionError:
        return  # the server closed the connection while we were still sending: refused too
    assert response.status_code == 413


def test_bodies_within_the_limit_still_go_through(server):
    login, password = _credentials(server)
    response = requests.post(server.url + "/v1/deposits", auth=(login, password), data=b"<not-xml",
                             headers={"Content-Type": "application/xml"}, timeout=30)
    assert response.status_code == 400 and "well-formed" in response.json()["error"]["message"]
