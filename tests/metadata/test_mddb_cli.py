"""`agency mddb load` and `agency mddb status`."""

from __future__ import annotations

import pytest

from agency.cli import main
from batchgen import deposit_xml, many
from mddb_pipeline import deposit, folder_of


@pytest.fixture
def cli_env(monkeypatch, settings):
    for name, value in (("DATA_DIR", settings.data_dir), ("BATCH_DIR", settings.batch_dir),
                        ("DATABASE_URL", settings.database_url), ("RUN_SCHEDULER", "false"),
                        ("RUN_WORKER", "false"), ("PASSWORD_TIME_COST", "1")):
        monkeypatch.setenv(f"AGENCY_{name}", str(value))


def test_load_prints_what_was_loaded_and_status_reports(svc, client, alice, cli_env, capsys):
    sid = deposit(svc, client, deposit_xml(many("10.5555", 3)))
    assert main(["mddb", "load", "--no-mail"]) == 0
    out = capsys.readouterr().out
    assert "loaded  alice/" in out and f"/{sid}: 3 of 3 registered records indexed" in out
    assert "1 batch(es) loaded (3 records indexed), 0 failed" in out
    assert main(["mddb", "status"]) == 0
    out = capsys.readouterr().out
    assert "indexed records: 3" in out and "1 loaded" in out and ": ok," in out


def test_failures_give_a_nonzero_exit_and_are_listed(svc, client, alice, cli_env, capsys):
    sid = deposit(svc, client, deposit_xml(many("10.5555", 1)))
    (folder_of(svc, sid) / "batch.xml").unlink()
    assert main(["mddb", "load"]) == 1
    assert "FAILED  alice/" in capsys.readouterr().out
    assert main(["mddb", "status"]) == 1
    assert "batch.xml is missing" in capsys.readouterr().out


def test_load_while_another_runs_says_so(svc, alice, cli_env, capsys):
    from agency.runtime.scheduling import MDDB_JOB, JobLease

    assert JobLease(svc.db, MDDB_JOB, 300, owner="elsewhere:1:x").acquire()
    assert main(["mddb", "load"]) == 3
    assert "skipped: another load is running (elsewhere:1:x" in capsys.readouterr().out
