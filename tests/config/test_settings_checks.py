"""Out-of-range values stop start-up with one line naming the variable; `agency config` shows every
setting's effective value and source and fails on an invalid one; unknown AGENCY_ variables are warned about."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agency.config import SettingError, describe_settings, load_settings, unknown_variables


@pytest.mark.parametrize("name, value, message", [
    ("AGENCY_CHUNK_RECORDS", "-5", "AGENCY_CHUNK_RECORDS must be at least 1; got -5"),
    ("AGENCY_MDDB_CHUNK_RECORDS", "0", "AGENCY_MDDB_CHUNK_RECORDS must be at least 1; got 0"),
    ("AGENCY_MDDB_HOUR", "25", "AGENCY_MDDB_HOUR must be 0 to 23; got 25"),
    ("AGENCY_SQLITE_CACHE_MIB", "0", "AGENCY_SQLITE_CACHE_MIB must be 1 to 65536; got 0"),
    ("AGENCY_SQLITE_CACHE_MIB", "100000", "AGENCY_SQLITE_CACHE_MIB must be 1 to 65536; got 100000"),
    ("AGENCY_LOG_FORMAT", "xml", "AGENCY_LOG_FORMAT must be one of text, json; got 'xml'"),
    ("AGENCY_DATABASE_URL", "postgres://agency@db/agency",
     "AGENCY_DATABASE_URL starts with postgres://, which SQLAlchemy does not take: write postgresql+psycopg://db/agency"),
    ("AGENCY_DATABASE_URL", "mysql://db/agency", "AGENCY_DATABASE_URL must be a sqlite:/// or postgresql+psycopg://"),
])
def test_out_of_range_values_are_refused_naming_the_variable(name, value, message):
    with pytest.raises(SettingError) as caught:
        load_settings({name: value})
    assert str(caught.value).startswith(message)
    assert load_settings({"AGENCY_MDDB_HOUR": "23", "AGENCY_CHUNK_RECORDS": "1"}).mddb_hour == 23


def test_describe_settings_says_where_each_value_came_from():
    reports = {r.variable: r for r in describe_settings({"AGENCY_CHUNK_RECORDS": "500", "AGENCY_MDDB_HOUR": "25",
                                                          "AGENCY_RUN_WORKER": "maybe"})}
    assert (reports["AGENCY_CHUNK_RECORDS"].value, reports["AGENCY_CHUNK_RECORDS"].source) == (500, "environment")
    assert reports["AGENCY_CHUNK_RECORDS"].error is None
    assert (reports["AGENCY_LEASE_SECONDS"].value, reports["AGENCY_LEASE_SECONDS"].source) == (120, "default")
    assert reports["AGENCY_MDDB_HOUR"].error == "AGENCY_MDDB_HOUR must be 0 to 23; got 25"
    assert "true/false" in reports["AGENCY_RUN_WORKER"].error


def test_unknown_variables_are_named_with_the_likely_one():
    warnings = unknown_variables({"AGENCY_CHUNK_RECORD": "5", "AGENCY_TEST_DATABASE_URL": "x", "HOME": "/"})
    assert warnings == ["AGENCY_CHUNK_RECORD is not an agency setting and is ignored (did you mean "
                        "AGENCY_CHUNK_RECORDS?); `agency config` lists them"]


def run(args, tmp_path, **env):
    return subprocess.run([sys.executable, *args], env={"PATH": "/usr/bin:/bin", "AGENCY_DATA_DIR": str(tmp_path),
                                                        **env}, capture_output=True, text=True, timeout=120)


def test_agency_config_shows_values_and_fails_on_an_invalid_one(tmp_path):
    good = run(["-m", "agency.cli", "config"], tmp_path, AGENCY_CHUNK_RECORDS="300", AGENCY_CHUNK_RECORD="3")
    assert good.returncode == 0, good.stderr
    assert "AGENCY_CHUNK_RECORDS=300    (environment)" in good.stdout
    assert "AGENCY_LEASE_SECONDS=120    (default)" in good.stdout
    assert "AGENCY_CHUNK_RECORD is not an agency setting" in good.stderr and "did you mean AGENCY_CHUNK_RECORDS" in \
        good.stderr
    bad = run(["-m", "agency.cli", "config"], tmp_path, AGENCY_MDDB_HOUR="25")
    assert bad.returncode == 1
    assert "AGENCY_MDDB_HOUR=25    (environment)" in bad.stdout
    assert "agency: AGENCY_MDDB_HOUR must be 0 to 23; got 25" in bad.stderr


@pytest.mark.parametrize("entry", [["-m", "agency.cli", "worker", "--once"], ["-c", "import agency.wsgi"]])
def test_start_up_stops_with_one_line(tmp_path, entry):
    result = run(entry, tmp_path, AGENCY_DATABASE_URL="postgres://agency@db/agency")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["agency: AGENCY_DATABASE_URL starts with postgres://, which SQLAlchemy does not take: "
                     "write postgresql+psycopg://db/agency"], result.stderr
