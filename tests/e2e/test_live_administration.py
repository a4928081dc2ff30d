"""Administration against a real server process: audit, a transfer, a disabled account, a prefix moved away."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from batchgen import Article, deposit_xml
from live_server import agency_env, start_server


def agency(env, *argv, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agency.cli", *argv], input=stdin, text=True, env=env,
                          capture_output=True, timeout=120)


@pytest.fixture
def server(tmp_path, database_url):
    env = agency_env(tmp_path, database_url, AGENCY_OPERATOR="ops", AGENCY_TRANSFERS_AUTO="1")
    for login, prefix in (("press", "10.5555"), ("other", "10.6666")):
        done = agency(env, "accounts", "create", login, "--email", f"{login}@example.org", "--prefix", prefix,
                      stdin=f"{login}-password\n")
        assert done.returncode == 0, done.stderr
    live = start_server(env)
    yield live
    live.stop()


def test_transfer_audit_disable_and_served_elsewhere_over_http(server):
    press, other = ("press", "press-password"), ("other", "other-password")
    response = requests.post(server.url + "/v1/deposits?wait=30", data=deposit_xml([Article("10.5555/live.1")]),
                             auth=press, headers={"Content-Type": "application/xml"}, timeout=60)
    assert response.json()["records"][0]["status"] == "Success"
    response = requests.post(server.url + "/v1/transfers", json={"to": "other", "dois": ["10.5555/live.1"]},
                             auth=press, timeout=30)
    assert response.status_code == 201
    tid = response.json()["transfer_id"]
    assert requests.post(f"{server.url}/v1/transfers/{tid}/consent", auth=press, timeout=30).json()["status"] == "open"
    done = requests.post(f"{server.url}/v1/transfers/{tid}/consent", auth=other, timeout=30).json()
    assert done["status"] == "completed" and done["dois"] == 1  # AGENCY_TRANSFERS_AUTO=1
    handle = requests.get(server.url + "/api/handles/10.5555/live.1", timeout=30).json()
    admin = [v for v in handle["values"] if v["type"] == "HS_ADMIN"][0]
    assert admin["data"]["value"]["handle"] == "0.NA/10.6666"
    actions = [e["action"] for e in requests.get(server.url + "/v1/audit", auth=other, timeout=30).json()["events"]]
    # The press's only DOI of its journal moved, so the journal's title record moved with it (issue 12).
    assert actions[-5:] == ["transfer.open", "transfer.consent", "transfer.consent", "title.transfer",
                            "transfer.complete"]
    # A disabled account is refused at once by the running server.
    assert agency(server.env, "accounts", "disable", "press").returncode == 0
    assert requests.get(server.url + "/v1/deposits", auth=press, timeout=30).status_code == 401
    assert agency(server.env, "accounts", "enable", "press").returncode == 0
    # A prefix moved away is answered for as a Handle server does for a prefix it does not hold.
    assert agency(server.env, "prefixes", "served-elsewhere", "10.6666", "--service", "Far RA").returncode == 0
    body = requests.get(server.url + "/api/handles/10.6666/anything", timeout=30).json()
    assert body["responseCode"] == 301 and "Far RA" in body["message"]
    response = requests.get(server.url + "/10.6666/anything", timeout=30, allow_redirects=False)
    assert response.status_code == 404 and "Far RA" in response.text
    out = agency(server.env, "audit", "--subject", "prefix:10.6666").stdout
    assert "operator:ops prefix.served-elsewhere prefix:10.6666" in out
