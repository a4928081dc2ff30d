"""Passwords sent the Crossref way (``pwd=``, ``login_passwd=``) never reach a log, a file or a page:
checked against a real server process by reading everything it wrote."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requests

from batchgen import Article, deposit_xml
from live_server import agency_env, start_server

SECRET = "Sesame-Pa55-0pen"        # alice's real password in this test
WRONG = "Not-The-Pa55word-42"      # a wrong one, sent too


def _files_under(folder: Path):
    for path in folder.rglob("*"):
        if path.is_file():
            yield path


def test_passwords_in_query_strings_reach_no_log_file_or_page(tmp_path, database_url):
    env = agency_env(tmp_path, database_url, AGENCY_LOG_FORMAT="text")
    subprocess.run([sys.executable, "-m", "agency.cli", "accounts", "create", "alice", "--email", "a@example.org",
                    "--prefix", "10.5555"], input=SECRET + "\n", env=env, check=True, capture_output=True, text=True)
    server = start_server(env)
    pages: list[str] = []
    try:
        url = server.url
        batch = deposit_xml([Article("10.5555/logs-1")], batch_id="logs-batch")
        for password in (SECRET, WRONG):
            pages.append(requests.post(url + f"/servlet/deposit?login_id=alice&login_passwd={password}",
                                       files={"fname": ("b.xml", batch)}, timeout=30).text)
            pages.append(requests.post(url + "/servlet/deposit", data={"operation": "doMDUpload", "login_id": "alice",
                                                                       "login_passwd": password},
                                       files={"fname": ("b.xml", batch)}, timeout=30).text)
            for path in ("/servlet/submissionDownload?usr=alice&pwd={p}&doi_batch_id=logs-batch&type=result",
                         "/servlet/query?usr=alice&pwd={p}&format=piped&qdata=1234-5679%7CJ%7CSmith%7C1%7C1%7C1%7C2024",
                         "/10.5555/nothing-here?pwd={p}", "/no/such/page?login_passwd={p}",
                         "/v1/deposits?pwd={p}", "/servlet/deposit?login_passwd={p}"):
                pages.append(requests.get(url + path.format(p=password), timeout=30).text)
        pages.append(requests.post(url + "/v1/deposits?wait=20", data=batch, auth=("alice", SECRET),
                                   headers={"Content-Type": "application/xml"}, timeout=60).text)
    finally:
        server.stop()
    output = "".join(server.output) + server.process.stdout.read()
    written = [path.read_bytes() for path in _files_under(tmp_path)]
    for secret in (SECRET, WRONG):
        assert secret not in output
        assert not [page for page in pages if secret in page]
        assert not [blob for blob in written if secret.encode() in blob]
    assert "pwd=[redacted]" in output and "login_passwd=[redacted]" in output
    assert "failed sign-in: login='alice' address=127.0.0.1" in output
    assert "account=alice" in output
    assert any(line.count(" POST /servlet/deposit") for line in output.splitlines())
