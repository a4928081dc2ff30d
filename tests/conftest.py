"""Fixtures: every database test runs on SQLite and, when AGENCY_TEST_DATABASE_URL is set, on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from agency.accounts import create_account
from agency.config import load_settings
from agency.services import build_agency

PG_URL = os.environ.get("AGENCY_TEST_DATABASE_URL", "")
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "corpus"

ALICE = ("alice", "alice-password", "alice@example.org", ["10.5555", "10.32013"])
BOB = ("bob", "bob-password", "bob@example.org", ["10.6666"])


def _pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'agency.db'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL run skipped: AGENCY_TEST_DATABASE_URL is not set")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield _pg_schema_url(schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def settings(tmp_path, database_url):
    return load_settings(
        environ={},
        data_dir=tmp_path / "var",
        batch_dir=tmp_path / "batches",
        database_url=database_url,
        password_time_cost=1,
        run_worker=False,
        run_scheduler=False,
        base_url="http://localhost",
    )


@pytest.fixture
def svc(settings):
    agency = build_agency(settings)
    yield agency
    agency.stop_background()
    agency.db.engine.dispose()


def add_account(svc, login, password, email, prefixes):
    with svc.db.transaction() as session:
        return create_account(session, svc.passwords, login, email, password, prefixes)


@pytest.fixture
def cli_environment(svc, monkeypatch):
    """AGENCY_* variables pointing `agency ...` commands run in-process at the test's agency."""
    s = svc.settings
    for name, value in {"DATA_DIR": s.data_dir, "BATCH_DIR": s.batch_dir, "DATABASE_URL": s.database_url,
                        "RUN_WORKER": "0", "RUN_SCHEDULER": "0", "PASSWORD_TIME_COST": "1"}.items():
        monkeypatch.setenv(f"AGENCY_{name}", str(value))
    return svc


@pytest.fixture
def alice(svc):
    return add_account(svc, *ALICE)


@pytest.fixture
def bob(svc):
    return add_account(svc, *BOB)


@pytest.fixture
def app(svc):
    from agency.app import create_app

    application = create_app(agency=svc)
    application.testing = True
    return application


@pytest.fixture
def client(app):
    return app.test_client()


def corpus_dir(name: str) -> Path:
    path = CORPUS / name
    if not path.is_dir():
        pytest.skip(f"../shared corpus not present ({path}): conformance test skipped")
    return path


def basic_headers(login: str, password: str, content_type: str | None = "application/xml") -> dict:
    import base64

    headers = {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}
    if content_type:
        headers["Content-Type"] = content_type
    return headers


@pytest.fixture
def deposit(svc, client, alice):
    """POST a batch as alice (or as given), run the worker, return (submission json, records)."""

    def run(data: bytes, login: str = "alice", password: str = "alice-password"):
        headers = basic_headers(login, password)
        response = client.post("/v1/deposits", data=data, headers=headers)
        assert response.status_code == 202, response.get_json()
        svc.worker.run_until_idle()
        body = client.get(response.headers["Location"], headers=headers).get_json()
        return body, body["records"]

    return run


@pytest.fixture
def cli_environment(svc, monkeypatch):
    """The AGENCY_* variables that make an `agency` command (agency.cli.main) use the test's agency."""
    s = svc.settings
    for name, value in {"DATA_DIR": s.data_dir, "BATCH_DIR": s.batch_dir, "DATABASE_URL": s.database_url,
                        "RUN_WORKER": "0", "RUN_SCHEDULER": "0", "PASSWORD_TIME_COST": "1",
                        "BASE_URL": s.base_url}.items():
        monkeypatch.setenv(f"AGENCY_{name}", str(value))
    return svc
