"""`agency upload` end to end against a live server: a folder of good, invalid and duplicate files, both protocols."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from live_server import agency_env, start_server  # noqa: E402

from batchgen import Article, deposit_xml, many

pytestmark = pytest.mark.slow


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "outgoing"
    (folder / "more").mkdir(parents=True)
    good = deposit_xml(many("10.5555", 2, start=1), batch_id="up-a")
    (folder / "a.xml").write_bytes(good)
    (folder / "b.xml").write_bytes(deposit_xml(many("10.5555", 3, start=10), batch_id="up-b"))
    (folder / "more" / "a-copy.xml").write_bytes(good)  # the same file again: sent once
    (folder / "more" / "broken.xml").write_bytes(b"<doi_batch><head>")  # not well-formed
    (folder / "more" / "invalid.xml").write_bytes(
        deposit_xml(many("10.5555", 1, start=20), batch_id="up-c").replace(b"doi_batch_id>", b"batch_ident>"))
    # Accepted as a file, but its records lose: same DOIs as a.xml, timestamp not newer; one foreign prefix.
    (folder / "more" / "z-again.xml").write_bytes(
        deposit_xml(many("10.5555", 2, start=1) + [Article("10.9999/not-ours")], batch_id="up-z"))
    (folder / "notes.txt").write_text("not a batch: left alone")
    return folder


def _upload(server, tmp_path: Path, password: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "AGENCY_PASSWORD": password}
    return subprocess.run([sys.executable, "-m", "agency.cli", "upload", *args, "--url", server.url, "--login", "demo",
                           "--poll", "0.2", "--log-timeout", "60", "--state", str(tmp_path / "state.json")],
                          env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_upload_folder_reports_every_file_and_record_then_resumes(tmp_path, database_url):
    server = start_server(agency_env(tmp_path, database_url, AGENCY_RUN_SCHEDULER="0"), "--demo")
    try:
        password = re.search(r"password '([^']+)'", "".join(server.output)).group(1)
        folder = _folder(tmp_path)
        first = _upload(server, tmp_path, password, str(folder), "--csv", str(tmp_path / "first.csv"))
        assert first.returncode == 1, first.stderr  # some files were refused
        assert "AGENCY_PASSWORD" not in first.stderr and password not in first.stdout + first.stderr
        rows = _rows(tmp_path / "first.csv")
        by_file = {}
        for row in rows:
            by_file.setdefault(Path(row["file"]).name, []).append(row)
        assert {name: {r["file_outcome"] for r in rs} for name, rs in by_file.items()} == {
            "a.xml": {"accepted"}, "b.xml": {"accepted"}, "a-copy.xml": {"duplicate"}, "broken.xml": {"refused"},
            "invalid.xml": {"refused"}, "z-again.xml": {"accepted"}}
        assert [(r["doi"], r["status"]) for r in by_file["b.xml"]] == [
            ("10.5555/test.10", "Success"), ("10.5555/test.11", "Success"), ("10.5555/test.12", "Success")]
        again = {r["doi"]: (r["status"], r["message"]) for r in by_file["z-again.xml"]}
        assert again["10.5555/test.1"][0] == "Failure" and "previously submitted version" in again["10.5555/test.1"][1]
        assert again["10.9999/not-ours"][0] == "Failure"
        assert "well-formed" in by_file["broken.xml"][0]["message"] or "line" in by_file["broken.xml"][0]["message"]
        assert by_file["invalid.xml"][0]["submission_id"]  # refused files are kept and numbered by the server
        assert "same content as" in by_file["a-copy.xml"][0]["message"]
        table = first.stdout
        assert re.search(r"accepted\s+3", table) and re.search(r"refused\s+2", table)
        assert re.search(r"duplicate\s+1", table) and re.search(r"Success\s+5", table)
        assert re.search(r"Failure\s+3", table) and re.search(r"records total\s+8", table)
        assert "files 6/6" in first.stderr and "records 11/11" in first.stderr

        resumed = _upload(server, tmp_path, password, str(folder), "--resume", "--csv", str(tmp_path / "second.csv"))
        outcomes = {Path(r["file"]).name: r["file_outcome"] for r in _rows(tmp_path / "second.csv")}
        assert outcomes == {"a.xml": "skipped", "b.xml": "skipped", "a-copy.xml": "skipped",
                            "broken.xml": "refused", "invalid.xml": "refused", "z-again.xml": "skipped"}
        assert resumed.returncode == 1

        single = tmp_path / "servlet.xml"
        single.write_bytes(deposit_xml(many("10.5555", 2, start=30), batch_id="up-servlet"))
        servlet = _upload(server, tmp_path, password, str(single), "--servlet", "--csv", str(tmp_path / "s.csv"))
        assert servlet.returncode == 0, servlet.stderr
        assert [(r["file_outcome"], r["doi"], r["status"]) for r in _rows(tmp_path / "s.csv")] == [
            ("accepted", "10.5555/test.30", "Success"), ("accepted", "10.5555/test.31", "Success")]
        bad_servlet = _upload(server, tmp_path, password, str(folder / "more" / "broken.xml"), "--servlet",
                              "--csv", str(tmp_path / "sb.csv"))
        assert bad_servlet.returncode == 1 and _rows(tmp_path / "sb.csv")[0]["file_outcome"] == "refused"

        wrong = subprocess.run([sys.executable, "-m", "agency.cli", "upload", str(single), "--url", server.url,
                                "--login", "demo", "--csv", str(tmp_path / "w.csv")],
                               env={**os.environ, "AGENCY_PASSWORD": "wrong"}, capture_output=True, text=True,
                               timeout=120, cwd=tmp_path)
        assert wrong.returncode == 2 and "401" in wrong.stderr
    finally:
        server.stop()


def test_no_password_and_no_terminal_is_a_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "AGENCY_PASSWORD"}
    result = subprocess.run([sys.executable, "-m", "agency.cli", "upload", str(tmp_path), "--url", "http://127.0.0.1:9",
                             "--login", "x"], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            timeout=60)
    assert result.returncode == 2 and "AGENCY_PASSWORD" in result.stderr
