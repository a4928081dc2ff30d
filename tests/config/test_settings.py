"""Settings: every AGENCY_* variable is documented, typed, and a wrong value is a clear error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agency.config import SettingError, Settings, documented_variables, load_settings


def test_every_setting_is_documented():
    for name, _default, doc in documented_variables():
        assert name.startswith("AGENCY_") and len(doc) > 10, name


def test_values_are_read_and_typed():
    settings = load_settings({"AGENCY_CHUNK_RECORDS": "250", "AGENCY_RUN_WORKER": "off",
                              "AGENCY_WORKER_POLL_SECONDS": "0.5", "AGENCY_BATCH_DIR": "/srv/batches",
                              "AGENCY_SMTP_URL": "smtp://127.0.0.1:2525"})
    assert settings.chunk_records == 250 and settings.run_worker is False
    assert settings.worker_poll_seconds == 0.5 and settings.batch_dir == Path("/srv/batches")
    assert settings.smtp_url == "smtp://127.0.0.1:2525"
    assert load_settings({}) == Settings()


@pytest.mark.parametrize("name, value, words", [
    ("AGENCY_CHUNK_RECORDS", "lots", "whole number"),
    ("AGENCY_WORKER_POLL_SECONDS", "soon", "a number"),
    ("AGENCY_RUN_WORKER", "perhaps", "true/false"),
])
def test_wrong_values_are_named(name, value, words):
    with pytest.raises(SettingError, match=f"{name} must be .*{words}"):
        load_settings({name: value})


def test_the_command_reports_a_wrong_value_without_a_traceback(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "AGENCY_DATA_DIR": str(tmp_path), "AGENCY_MAX_BATCH_BYTES": "big"}
    result = subprocess.run([sys.executable, "-m", "agency.cli", "worker", "--once"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "AGENCY_MAX_BATCH_BYTES must be a whole number; got 'big'" in result.stderr
    assert "Traceback" not in result.stderr


def test_udp_threads_follow_the_database_unless_set(tmp_path):
    sqlite = load_settings(environ={}, data_dir=tmp_path)
    postgres = load_settings(environ={"AGENCY_DATABASE_URL": "postgresql+psycopg://u@h:5432/agency"}, data_dir=tmp_path)
    assert (sqlite.udp_threads, postgres.udp_threads) == (1, 4)  # CPU-bound kept answers; round trips to overlap
    chosen = load_settings(environ={"AGENCY_HANDLE_UDP_THREADS": "2",
                                    "AGENCY_DATABASE_URL": "postgresql+psycopg://u@h:5432/agency"}, data_dir=tmp_path)
    assert chosen.udp_threads == 2
