"""A real browser renders the DOI Not Found page served by gunicorn (agency.wsgi)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from batchgen import Article

from resolve_data import register
from resolve_server import running_server

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def dump_dom(url: str, profile) -> str:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run",
               f"--user-data-dir={profile}", "--dump-dom", url]
    done = subprocess.run(command, capture_output=True, timeout=120, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture
def chromium():
    if not shutil.which(CHROMIUM):
        pytest.skip("chromium is not installed (apt-get install -y chromium): real-browser check skipped")
    return CHROMIUM


def test_browser_renders_not_found_page(chromium, client, svc, settings, alice, tmp_path):
    register(client, svc, [Article("10.5555/seen", url="https://example.org/seen")])
    svc.db.engine.dispose()
    with running_server(settings, server="gunicorn") as base:
        dom = dump_dom(base + "/10.5555/seen/", tmp_path / "profile")
        assert '<h1 id="heading">DOI Not Found</h1>' in dom
        assert "The address ends with a slash" in dom
        assert 'href="/10.5555/seen"' in dom  # the suggested DOI, as a link

        dom = dump_dom(base + "/10.5555", tmp_path / "profile")
        assert "Only a prefix (10.5555) was given" in dom
