"""Metadata in seconds: how long after a deposit its log, its indexed metadata and its combined mail exist.

    .venv/bin/python bench/latency.py                     # 10 deposits of 10 records, embedded default (SQLite)
    .venv/bin/python bench/latency.py --runs 20 --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Starts ``agency serve`` at its default settings (worker and scheduler in-process,
mail to the maildir) in a scratch folder, then for each run POSTs a 10-record
batch to ``/v1/deposits?wait=30`` and measures, from the moment of the POST:

* log:      the answer with the completed log (the floor: the deposit itself),
* indexed:  the first time a piped query for one of its records (the README's
            "Try it" query) answers with that record's DOI,
* mail:     the first time the combined diagnostic's ``.eml`` is in the maildir.

Prints p50 / p90 / max of each and the goal: mail p50 <= 5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from batchgen import Article, deposit_xml  # noqa: E402
from scratch import free_port, scratch_database  # noqa: E402

LOGIN, PASSWORD, PREFIX = "bench", "bench-password", "10.5555"
RECORDS = 10
GOAL_MAIL_P50 = 5.0


def start_server(env: dict, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "agency.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except requests.RequestException:
            pass
        if process.poll() is not None:
            raise SystemExit("agency serve exited")
        time.sleep(0.2)
    process.kill()
    raise SystemExit("agency serve did not become ready within 60 s")


def one_run(url: str, maildir: Path, run: int, timeout: float) -> tuple[float, float, float]:
    batch_id = f"latency-{run}"
    articles = [Article(f"{PREFIX}/latency.{run}.{n}", first_page=str(1000 * run + n), surname=f"Author{run}x{n}")
                for n in range(RECORDS)]
    probe = articles[RECORDS // 2]
    query = f"1234-5679|Journal of Tests|{probe.surname}|1|1|{probe.first_page}|2024|full_text|k{run}|\n"
    started = time.monotonic()
    answer = requests.post(f"{url}/v1/deposits?wait=30", data=deposit_xml(articles, batch_id=batch_id),
                           auth=(LOGIN, PASSWORD), headers={"Content-Type": "application/xml"}, timeout=60)
    if answer.status_code != 200 or answer.json()["status"] != "completed":
        raise SystemExit(f"deposit {run} did not complete: {answer.status_code} {answer.text[:300]}")
    logged = time.monotonic() - started
    indexed = mailed = None
    while (indexed is None or mailed is None) and time.monotonic() - started < timeout:
        if indexed is None:
            found = requests.post(f"{url}/v1/queries", data=query.encode(), auth=(LOGIN, PASSWORD),
                                  headers={"Content-Type": "text/plain"}, timeout=30)
            if probe.doi in found.text:
                indexed = time.monotonic() - started
        if mailed is None and any(f"Subject: Batch {batch_id}:" in path.read_text(errors="replace")
                                  for path in maildir.glob("new/*.eml")):
            mailed = time.monotonic() - started
        time.sleep(0.05)
    if indexed is None or mailed is None:
        raise SystemExit(f"run {run}: not indexed and mailed within {timeout} s (indexed {indexed}, mail {mailed})")
    return logged, indexed, mailed


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a run may take")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (a throwaway schema is used)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agency-bench-latency-") as work_dir:
        work = Path(work_dir)
        with scratch_database(args.database_url, work / "agency.db") as database_url:
            env = dict(os.environ, AGENCY_DATA_DIR=str(work / "var"), AGENCY_BATCH_DIR=str(work / "batches"),
                       AGENCY_DATABASE_URL=database_url, AGENCY_PASSWORD_TIME_COST="1", AGENCY_LOG_LEVEL="WARNING")
            subprocess.run([sys.executable, "-m", "agency.cli", "accounts", "create", LOGIN, "--email",
                            "bench@example.org", "--prefix", PREFIX], input=PASSWORD + "\n", text=True, env=env,
                           check=True, capture_output=True)
            port = free_port()
            server = start_server(env, port)
            try:
                results = [one_run(f"http://127.0.0.1:{port}", work / "var" / "maildir", run, args.timeout)
                           for run in range(1, args.runs + 1)]
            finally:
                server.terminate()
                server.wait(timeout=30)
    print(f"{args.runs} deposits of {RECORDS} records, agency serve at default settings "
          f"({'PostgreSQL' if args.database_url else 'SQLite'}); seconds from the POST")
    print(f"{'':10} {'p50':>7} {'p90':>7} {'max':>7} {'mean':>7}")
    for name, column in (("log", 0), ("indexed", 1), ("mail", 2)):
        values = [r[column] for r in results]
        print(f"{name:10} {percentile(values, 50):7.2f} {percentile(values, 90):7.2f} {max(values):7.2f} "
              f"{statistics.fmean(values):7.2f}")
    mail_p50 = percentile([r[2] for r in results], 50)
    floor = percentile([r[0] for r in results], 50)
    print(f"mail p50 {mail_p50:.2f} s = {mail_p50 / floor:.1f}x the log's p50 (the floor, {floor:.2f} s); "
          f"goal <= {GOAL_MAIL_P50:.0f} s: {'met' if mail_p50 <= GOAL_MAIL_P50 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
