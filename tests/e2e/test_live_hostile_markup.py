"""The live server's memory after hostile markup: refused with 413, resident memory stays bounded.

Prints the server's resident set size after each file (run with -s); asserts a generous
bound (the issue measured 600 MB for the 5.5 MB wide-attribute file before the limits; one
ordinary 46 MB body item took 448 MB more before AGENCY_MAX_BODY_ITEM_BYTES)."""

from __future__ import annotations

import pytest
import requests

from batchgen import Article, deposit_xml
from live_server import agency_env, start_server

pytestmark = pytest.mark.slow
RSS_BOUND_MB = 300


def _rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _hostile_files() -> dict[str, bytes]:
    plain = deposit_xml([Article("10.5555/live-hostile.1", title="T")])
    attributes = b" ".join(b'a%d=""' % n for n in range(600_000))
    return {
        "600,000 attributes on one element (6 MB)": plain.replace(b"<title>T</title>",
                                                                b"<title " + attributes + b">T</title>"),
        "3,000,000 children in one title (12 MB)": plain.replace(b"<title>T</title>",
                                                               b"<title>" + b"<i/>" * 3_000_000 + b"</title>"),
        # Ordinary markup, but 46 MB of it in one <journal>: past AGENCY_MAX_BODY_ITEM_BYTES (8 MiB).
        "80,000 articles in one journal (46 MB)": deposit_xml([Article(f"10.5555/live-one-journal.{n}")
                                                             for n in range(80_000)], articles_per_journal=80_000),
    }


def test_server_memory_stays_bounded_after_hostile_markup(tmp_path, database_url):
    server = start_server(agency_env(tmp_path, database_url), "--demo")
    try:
        line = next(line for line in server.output if line.startswith("demo account"))
        auth = (line.split("'")[1], line.split("'")[3])
        figures = {"at start": _rss_mb(server.process.pid)}
        for name, data in _hostile_files().items():
            response = requests.post(server.url + "/v1/deposits", auth=auth, data=data,
                                     headers={"Content-Type": "application/xml"}, timeout=120)
            assert response.status_code == 413, response.text[:500]
            assert "AGENCY_MAX_" in response.json()["refusal"]["errors"][0]["message"]
            figures[name] = _rss_mb(server.process.pid)
        print(f"\nserver RSS MB: {figures}")
        assert max(figures.values()) < RSS_BOUND_MB, figures
    finally:
        server.stop()
