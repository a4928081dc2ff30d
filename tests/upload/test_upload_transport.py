"""The upload client's HTTP: 429 + Retry-After honoured, dropped connections and 5xx retried, then given up clearly."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agency.upload.run import examine
from agency.upload.transport import Client, Unauthorized, UploadError, file_body


class Scripted:
    """Loopback server answering in turn: a status (with Retry-After for 429), or 'drop' (close without answering)."""

    def __init__(self, script: list) -> None:
        self.script, self.bodies = list(script), []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                outer.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                action = outer.script.pop(0) if outer.script else 202
                if action == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(action)
                if action == 429:
                    self.send_header("Retry-After", "7")
                self.send_header("Content-Type", "application/json")
                body = b'{"submission_id": 1, "status": "queued"}'
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def batch(tmp_path) -> Path:
    path = tmp_path / "b.xml"
    path.write_bytes(b"<doi_batch>" + b"x" * 300_000 + b"</doi_batch>")
    return path


def _client(url: str, sleeps: list, retries: int = 3) -> Client:
    return Client(url, "demo", "pw", timeout=5, retries=retries, backoff=0.5, sleep=sleeps.append)


def test_429_waits_retry_after_then_sends_the_whole_file_again(batch):
    server, sleeps = Scripted([429, 429, 202]), []
    try:
        answer = _client(server.url, sleeps).request("POST", "/v1/deposits", body=file_body(batch))
    finally:
        server.close()
    assert answer.status == 202 and answer.json()["submission_id"] == 1
    assert sleeps == [7.0, 7.0]
    assert [len(b) for b in server.bodies] == [batch.stat().st_size] * 3


def test_dropped_connections_and_503_are_retried_with_backoff(batch):
    server, sleeps = Scripted(["drop", 503, 202]), []
    try:
        answer = _client(server.url, sleeps).request("POST", "/v1/deposits", body=file_body(batch))
    finally:
        server.close()
    assert answer.status == 202 and sleeps == [0.5, 1.0]


def test_retries_run_out_with_the_last_error_named(batch):
    server, sleeps = Scripted([503] * 10), []
    try:
        with pytest.raises(UploadError, match="after 3 attempts: HTTP 503"):
            _client(server.url, sleeps, retries=2).request("POST", "/v1/deposits", body=file_body(batch))
    finally:
        server.close()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(UploadError, match="ConnectionRefusedError"):
        _client(f"http://127.0.0.1:{port}", [], retries=1).request("GET", "/v1/deposits")


def test_401_stops_at_once(batch):
    server, sleeps = Scripted([401]), []
    try:
        with pytest.raises(Unauthorized):
            _client(server.url, sleeps).request("POST", "/v1/deposits", body=file_body(batch))
    finally:
        server.close()
    assert sleeps == []


def test_records_are_counted_across_read_boundaries(tmp_path):
    path = tmp_path / "big.xml"
    record = b"<doi_data><doi>10.5555/x</doi></doi_data>" + b" " * 1000
    path.write_bytes(b"<doi_batch>" + record * 3000 + b"<cr:doi_data></cr:doi_data ></doi_batch>")
    assert examine(path).records == 3001
