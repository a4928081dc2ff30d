"""Keeping records right against a real server process: URL updates, resources, aliases, the tombstone
page in headless Chromium, and the streamed report."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys

import pytest
import requests

from batchgen import Article, deposit_xml
from live_server import agency_env, start_server
from recordsdata import funding_item, resources_xml
from test_live_deposits import demo_credentials

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def server(tmp_path, database_url):
    live = start_server(agency_env(tmp_path, database_url), "--demo")
    yield live
    live.stop()


def test_records_admin_over_http(server, tmp_path):
    login, password = demo_credentials(server)
    auth, url = (login, password), server.url
    deposit = requests.post(url + "/v1/deposits?wait=30", auth=auth, timeout=60,
                            data=deposit_xml([Article("10.5555/live1"), Article("10.5555/live2")]),
                            headers={"Content-Type": "application/xml"})
    assert deposit.status_code == 200 and deposit.json()["counts"]["success_count"] == 2

    moved = requests.post(url + "/v1/url-updates?wait=30", auth=auth, timeout=60,
                          data=b"\xef\xbb\xbf10.5555/live1\thttps://moved.example.org/1\r\nbad line\r\n",
                          headers={"Content-Type": "text/plain"})
    assert moved.status_code == 200, moved.text
    assert [r["status"] for r in moved.json()["records"]] == ["Success", "Failure"]
    assert requests.get(url + "/10.5555/live1", allow_redirects=False, timeout=10).headers["Location"] == \
        "https://moved.example.org/1"

    resources = requests.post(url + "/v1/deposits?wait=30", auth=auth, timeout=60,
                              data=resources_xml([funding_item("10.5555/live2")]),
                              headers={"Content-Type": "application/xml"})
    assert resources.json()["records"][0]["msg"] == "FundRef Resources processed successfully"

    alias = requests.post(url + "/v1/aliases", auth=auth, json={"primary": "10.5555/live1", "alias": "10.5555/live2"},
                          timeout=10)
    assert alias.status_code == 201
    assert requests.get(url + "/10.5555/live2", allow_redirects=False, timeout=10).headers["Location"] == \
        "https://moved.example.org/1"

    report = requests.get(url + "/v1/reports/depositor?prefix=10.5555", auth=auth, stream=True, timeout=30)
    rows = list(csv.DictReader(io.StringIO(report.text)))
    assert [(r["doi"], r["state"]) for r in rows] == [("10.5555/live1", "active"), ("10.5555/live2", "alias")]

    env = dict(server.env, AGENCY_BASE_URL=url)
    done = subprocess.run([sys.executable, "-m", "agency.cli", "handles", "withdraw", "10.5555/live1", "--reason",
                           "Retracted by the publisher"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    gone = requests.get(url + "/10.5555/live1", timeout=10)
    assert gone.status_code == 410 and "Retracted by the publisher" in gone.text
    if shutil.which(CHROMIUM):
        dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              "--disable-background-networking", "--disable-component-update", "--disable-sync",
                              f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", url + "/10.5555/live1"],
                             capture_output=True, text=True, timeout=120).stdout
        assert '<h1 id="heading">This DOI has been withdrawn</h1>' in dom
        assert '<code id="doi">10.5555/live1</code>' in dom and "Retracted by the publisher" in dom
