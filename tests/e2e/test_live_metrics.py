"""/metrics under gunicorn with several worker processes: every process's counts are added up,
whichever process answers the scrape (prometheus-client's multi-process mode)."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from live_server import agency_env, free_port

pytestmark = pytest.mark.slow


def not_found_total(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "agency_resolutions_total" and sample.labels == {"outcome": "not_found"}:
                return sample.value
    return 0.0


def test_metrics_add_up_every_gunicorn_worker(tmp_path, database_url):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = agency_env(tmp_path, database_url, AGENCY_RUN_WORKER="0", AGENCY_RUN_SCHEDULER="0",
                     PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    port = free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    server = subprocess.Popen([str(gunicorn), "--bind", f"127.0.0.1:{port}", "--workers", "2",
                               "agency.wsgi:app"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(url + "/readyz", timeout=5).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        def miss(number: int) -> int:
            # A new connection each time, several at once: both sync workers take some.
            return requests.get(url + f"/10.5555/missing-{number}", timeout=10,
                                headers={"Connection": "close"}).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(miss, range(40))) == {404}
        for _ in range(6):
            scraped = requests.get(url + "/metrics", timeout=10, headers={"Connection": "close"})
            assert not_found_total(scraped.text) == 40
        assert len(list(metrics_dir.glob("counter_*.db"))) >= 2, "both workers wrote counters"
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "GET /metrics 200" in output  # our request lines reach gunicorn's stderr
