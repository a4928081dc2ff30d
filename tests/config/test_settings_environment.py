"""A child process (the metadata load) is given exactly the parent's settings through AGENCY_* variables."""

from __future__ import annotations

from pathlib import Path

from agency.config import load_settings, settings_environment


def test_settings_survive_the_trip_through_the_environment(tmp_path):
    settings = load_settings(environ={}, data_dir=tmp_path / "var", batch_dir=tmp_path / "b",
                             database_url="sqlite:////x.db", run_worker=False, mddb_mail=False,
                             password_hash_wait_seconds=0.5, max_children_per_element=7)
    environ = settings_environment(settings)
    assert environ["AGENCY_RUN_WORKER"] == "0" and environ["AGENCY_BATCH_DIR"] == str(tmp_path / "b")
    assert load_settings(environ=environ) == settings
    assert isinstance(load_settings(environ=environ).schema_dir, Path)
