"""A built wheel works with no checkout: installed in a fresh virtual environment, run from another
directory, it serves a deposit end to end (schemas, templates and migrations come from the package).

Bounded: one wheel build and one small deposit (about a minute on a busy 2-core machine).
The fresh environment gets agency from the wheel and nothing else; its dependencies are
this environment's (a path file), so the test needs no package index, and ``pip check``
proves the wheel's declared requirements are met by them.
"""

from __future__ import annotations

import os
import site
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import requests

from batchgen import Article, deposit_xml

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(*args, timeout=240, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q", "-w", str(out),
        str(REPO), cwd=out)
    (built,) = out.glob("agency-*.whl")
    return built


def test_the_wheel_carries_schemas_templates_and_migrations(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in ("agency/resources/schemas/crossref/catalog.json",
                     "agency/resources/templates/logs/doi_batch_diagnostic.xml.j2",
                     "agency/migrations/versions/0001_initial_schema.py",
                     "agency/migrations/script.py.mako",
                     "agency/migrations/env.py"):
        assert expected in names, expected
    for folder in ("schemas", "templates"):
        files = {p.relative_to(REPO).as_posix() for p in (REPO / folder).rglob("*") if p.is_file()}
        assert {f"agency/resources/{f}" for f in files} <= names, folder


def test_a_deposit_through_the_installed_wheel(wheel, tmp_path):
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    python = venv / "bin" / "python"
    purelib = run(str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip()
    # The dependencies only (not this checkout's editable agency): this environment's site-packages.
    Path(purelib, "agency-test-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run(sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
        "--disable-pip-version-check", "-q", str(wheel))
    run(sys.executable, "-m", "pip", "--python", str(python), "check", "--disable-pip-version-check")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "AGENCY_PASSWORD_TIME_COST": "1",
           "AGENCY_DATA_DIR": str(elsewhere / "var"), "AGENCY_BATCH_DIR": str(elsewhere / "batches")}
    where = run(str(python), "-c", "import agency.config as c; print(c.__file__); print(c.load_settings().schema_dir)",
                cwd=elsewhere, env=env).stdout.split()
    assert all(path.startswith(str(venv)) for path in where), where

    agency = str(venv / "bin" / "agency")
    run(agency, "accounts", "create", "press", "--email", "ops@press.example", "--prefix", "10.5555",
        input="a long password\n", cwd=elsewhere, env=env)
    port = free_port()
    server = subprocess.Popen([agency, "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=elsewhere, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(url + "/healthz", timeout=1)
                break
            except requests.ConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        batch = deposit_xml([Article("10.5555/wheel-1"), Article("10.5555/wheel-2")], batch_id="wheel")
        answer = requests.post(url + "/v1/deposits?wait=30", data=batch, auth=("press", "a long password"),
                               headers={"Content-Type": "application/xml"}, timeout=60)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["status"] == "completed" and [r["status"] for r in body["records"]] == ["Success", "Success"]
        log = requests.get(url + f"/v1/deposits/{body['submission_id']}/log", auth=("press", "a long password"),
                           timeout=10)
        assert "doi_batch_diagnostic" in log.text and "10.5555/wheel-2" in log.text
        resolved = requests.get(url + "/10.5555/wheel-1", allow_redirects=False, timeout=10)
        assert resolved.status_code == 302 and resolved.headers["Location"].endswith("/articles/wheel-1")
        page = requests.get(url + "/10.5555/missing", timeout=10)
        assert page.status_code == 404 and "<html" in page.text.lower()
    finally:
        server.terminate()
        server.wait(timeout=15)
