"""The deposit path against a real server process (HTTP over loopback, not the test client)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import requests
from lxml import html as lxml_html

from batchgen import deposit_xml, many
from live_server import agency_env, start_server
from logcheck import log_records, parse_valid_log


@pytest.fixture
def server(tmp_path, database_url):
    env = agency_env(tmp_path, database_url, AGENCY_MAX_BATCH_BYTES="60000")
    live = start_server(env, "--demo")
    yield live
    live.stop()


def demo_credentials(server) -> tuple[str, str]:
    line = next(line for line in server.output if line.startswith("demo account"))
    login, password = re.search(r"login '([^']+)', password '([^']+)'", line).groups()
    return login, password


def test_servlet_and_api_deposits_over_http(server):
    login, password = demo_credentials(server)
    response = requests.post(server.url + "/servlet/deposit",
                             data={"operation": "doMDUpload", "login_id": login, "login_passwd": password},
                             files={"fname": ("a.xml", deposit_xml(many("10.5555", 3), batch_id="live-a"))},
                             timeout=30)
    assert response.status_code == 200
    assert lxml_html.fromstring(response.content).findtext(".//title") == "SUCCESS"
    assert "Your batch submission was successfully received." in response.text

    response = requests.post(server.url + "/v1/deposits?wait=30", auth=(login, password),
                             data=deposit_xml(many("10.5555", 5, start=3), batch_id="live-b", timestamp="20250101000000"),
                             headers={"Content-Type": "application/xml"}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "completed"
    assert [r["status"] for r in body["records"]] == ["Success"] * 5
    assert body["records"][0]["msg"] == "Successfully updated"  # test.3 came in the servlet batch

    log = requests.get(server.url + "/servlet/submissionDownload", timeout=10,
                       params={"usr": login, "pwd": password, "doi_batch_id": "live-a", "type": "result"})
    root = parse_valid_log(log.content)
    assert root.get("status") == "completed" and len(log_records(root)) == 3


def test_wrong_password_and_oversized_chunked_upload(server):
    login, password = demo_credentials(server)
    assert requests.post(server.url + "/v1/deposits", auth=(login, "wrong"), data=b"<x/>",
                         headers={"Content-Type": "application/xml"}, timeout=10).status_code == 401

    def chunks():
        data = deposit_xml(many("10.5555", 400))
        for start in range(0, len(data), 8192):
            yield data[start:start + 8192]

    response = requests.post(server.url + "/v1/deposits", auth=(login, password), data=chunks(),
                             headers={"Content-Type": "application/xml"}, timeout=30)
    assert response.status_code == 413
    assert "60000 bytes" in response.json()["error"]["message"]


def test_accounts_create_reads_the_password_from_stdin(server):
    result = subprocess.run([sys.executable, "-m", "agency.cli", "accounts", "create", "press",
                             "--email", "press@example.org", "--prefix", "10.7777", "--prefix", "10.8888"],
                            input="press-password-1\n", text=True, capture_output=True, env=server.env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "10.7777, 10.8888" in result.stdout
    response = requests.post(server.url + "/v1/deposits?wait=30", auth=("press", "press-password-1"),
                             data=deposit_xml(many("10.8888", 1)), headers={"Content-Type": "application/xml"},
                             timeout=60)
    assert response.json()["records"][0]["status"] == "Success"
    again = subprocess.run([sys.executable, "-m", "agency.cli", "accounts", "create", "other",
                            "--email", "o@example.org", "--prefix", "10.7777"],
                           input="other-password\n", text=True, capture_output=True, env=server.env, timeout=60)
    assert again.returncode == 2 and "belongs to another account" in again.stderr
