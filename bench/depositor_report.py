#!/usr/bin/env python3
"""Benchmark: the depositor report streamed over a large prefix (default 1,000,000 DOIs).

Fills an empty database with N handles of one account under one prefix (each
with a URL value and a metadata_records title; every 100th an alias, every
1000th withdrawn), then writes the whole CSV report to /dev/null through
``agency.admin.reports`` (the code behind GET /v1/reports/depositor and
``agency report depositor``). The floor, measured in the same run, is the bare
SELECT of the same joined rows read in batches with no row objects and no CSV.
Prints rows/s for both, their ratio, and the process's peak RSS before and
after the report (the report must not grow with N).

    .venv/bin/python bench/depositor_report.py [--dois 1000000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import insert, text  # noqa: E402

from agency.accounts import create_account, registrant_by_id  # noqa: E402
from agency.admin.reports import _statement, as_csv, depositor_rows  # noqa: E402
from agency.config import load_settings  # noqa: E402
from agency.handles.store import ALIAS_INDEX, URL_INDEX  # noqa: E402
from agency.models import Handle, HandleValue, MetadataRecord, Withdrawal  # noqa: E402
from agency.models.types import utcnow  # noqa: E402
from agency.services import build_agency  # noqa: E402
from scratch import scratch_database  # noqa: E402

PREFIX = "10.5555"
CHUNK = 20_000
SAMPLES: dict[str, float] = {}  # the largest anonymous RSS seen every 100,000 rows, per phase


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def anon_rss_mb() -> float:
    """Resident anonymous memory (the heap: Python objects, driver buffers), without the pages of the
    SQLite file that agency maps into memory (PRAGMA mmap_size), which peak RSS counts too."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return 0.0


def fill(svc, count: int) -> int:
    with svc.db.transaction() as session:
        account = create_account(session, svc.passwords, "bench", "bench@example.org", "bench-password", [PREFIX])
    now = utcnow()
    for start in range(0, count, CHUNK):
        numbers = range(start, min(start + CHUNK, count))
        names = [f"{PREFIX}/bench.{n:08d}" for n in numbers]
        with svc.db.transaction() as session:
            session.execute(insert(Handle), [
                {"key": name.upper(), "name": name, "prefix": PREFIX, "version": "0000020240101000000",
                 "revision": 1, "account_id": account.id, "submission_id": 1 + n // 10_000, "created_at": now,
                 "updated_at": now} for n, name in zip(numbers, names)])
            session.execute(insert(HandleValue), [
                {"handle_key": name.upper(), "idx": URL_INDEX, "type": "URL", "data": f"https://example.org/{n}",
                 "ttl": 86400, "timestamp": now} for n, name in zip(numbers, names)])
            session.execute(insert(HandleValue), [
                {"handle_key": name.upper(), "idx": ALIAS_INDEX, "type": "HS_ALIAS", "data": f"{PREFIX}/bench.0",
                 "ttl": 86400, "timestamp": now} for n, name in zip(numbers, names) if n % 100 == 99])
            session.execute(insert(Withdrawal), [
                {"handle_key": name.upper(), "doi": name, "active": True, "reason": "bench", "withdrawn_at": now}
                for n, name in zip(numbers, names) if n % 1000 == 500])
            session.execute(insert(MetadataRecord), [
                {"doi_key": name.upper(), "doi": name, "prefix": PREFIX, "content_type": "journal_article",
                 "body_type": "journal", "title": f"A study of thing {n}", "journal_title": "Journal of Benches",
                 "depositor_login": "bench", "version": "0000020240101000000", "batch_folder": "bench/x"}
                for n, name in zip(numbers, names)])
    return account.id


def floor(svc, account_id: int) -> tuple[int, float]:
    """The same joined SELECT, rows fetched in batches and dropped: what the database and driver cost."""
    started = time.perf_counter()
    rows = 0
    with svc.db.sessions() as session:
        result = session.execute(_statement(account_id, PREFIX, None))
        for partition in result.partitions():
            rows += len(partition)
            if rows % 100_000 < len(partition):
                SAMPLES["floor"] = max(SAMPLES.get("floor", 0.0), anon_rss_mb())
    return rows, time.perf_counter() - started


def report(svc, account_id: int) -> tuple[int, float]:
    with svc.db.sessions() as session:
        registrant = registrant_by_id(session, account_id)
    started = time.perf_counter()
    lines = 0
    with open(os.devnull, "w") as sink:
        for piece in as_csv(depositor_rows(svc.db, registrant, PREFIX)):
            sink.write(piece)
            lines += 1
            if lines % 100_000 == 0:
                SAMPLES["report"] = max(SAMPLES.get("report", 0.0), anon_rss_mb())
    return lines - 1, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dois", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=os.environ.get("AGENCY_BENCH_DATABASE_URL", ""))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, scratch_database(args.database_url, Path(tmp) / "bench.db") as url:
        settings = load_settings(environ={}, data_dir=Path(tmp) / "var", batch_dir=Path(tmp) / "batches",
                                 database_url=url, run_worker=False, run_scheduler=False, password_time_cost=1)
        svc = build_agency(settings)
        started = time.perf_counter()
        account_id = fill(svc, args.dois)
        if svc.db.dialect == "postgresql":
            with svc.db.transaction() as session:
                session.execute(text("ANALYZE"))
        print(f"filled {args.dois:,} DOIs in {time.perf_counter() - started:.1f} s "
              f"({svc.db.dialect}); peak RSS so far {peak_rss_mb():.0f} MB")
        before = peak_rss_mb()
        SAMPLES["filled"] = anon_rss_mb()
        floor_rows, floor_seconds = floor(svc, account_id)
        after_floor = peak_rss_mb()
        rows, seconds = report(svc, account_id)
        assert rows == floor_rows == args.dois, (rows, floor_rows)
        print(f"floor  (bare SELECT, batches): {floor_rows / floor_seconds:,.0f} rows/s ({floor_seconds:.1f} s)")
        print(f"report (CSV, streamed):        {rows / seconds:,.0f} rows/s ({seconds:.1f} s); "
              f"{(rows / seconds) / (floor_rows / floor_seconds):.0%} of the floor")
        print(f"peak RSS: {before:.0f} MB after filling, {after_floor:.0f} MB after the floor's SELECT, "
              f"{peak_rss_mb():.0f} MB after the report (SQLite's mapped file pages count here)")
        print(f"heap (RssAnon): {SAMPLES['filled']:.0f} MB after filling, at most {SAMPLES.get('floor', 0):.0f} MB "
              f"during the floor, at most {SAMPLES.get('report', 0):.0f} MB during the report")
        svc.db.engine.dispose()


if __name__ == "__main__":
    main()
