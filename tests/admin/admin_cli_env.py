"""The environment that points `agency` CLI commands at a test's agency."""

from __future__ import annotations

import pytest


@pytest.fixture
def cli_env(monkeypatch, settings):
    for name, value in (("DATA_DIR", settings.data_dir), ("BATCH_DIR", settings.batch_dir),
                        ("DATABASE_URL", settings.database_url), ("RUN_SCHEDULER", "false"),
                        ("RUN_WORKER", "false"), ("PASSWORD_TIME_COST", "1"), ("OPERATOR", "jo")):
        monkeypatch.setenv(f"AGENCY_{name}", str(value))
