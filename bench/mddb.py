#!/usr/bin/env python3
"""Benchmark: the metadata database load of registered records from batch files.

Generates Crossref-style journal batches (journals of up to 50 articles with
titles, 1 to 5 authors, ISSN, volume/issue, pages: the shape of
../shared/tools/genbatch.py) with a matching all-Success ``log.xml`` each,
laid out as batches/<login>/<yyyy>/<mm>/<id>/, then times ``MddbLoader.run()``
into an empty database. The floor, measured in the same run, is a bare lxml
parse of the same files plus one bulk insert of the very rows the load wrote
into the same (emptied) tables. Prints records/s and load speed / floor speed.

    .venv/bin/python bench/mddb.py --records 100000
    .venv/bin/python bench/mddb.py --records 5000 --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

PostgreSQL runs when --database-url or AGENCY_TEST_DATABASE_URL is given (in a
throwaway schema, dropped afterwards).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lxml import etree  # noqa: E402
from sqlalchemy import delete, insert, select  # noqa: E402

from agency.config import load_settings  # noqa: E402
from agency.models import (  # noqa: E402
    MetadataContributor, MetadataIdentifier, MetadataJournalTitle, MetadataLocator, MetadataRecord,
)

TABLES = (MetadataRecord, MetadataContributor, MetadataIdentifier, MetadataLocator,  # all the load writes
          MetadataJournalTitle)
from agency.services import build_agency, settle_startup_heap  # noqa: E402
from agency.deposit.validation import hardened_parser_options  # noqa: E402
from generate import write_batch  # noqa: E402
from scratch import scratch_database  # noqa: E402

def write_log(path: Path, submission_id: int, batch_id: str, dois: list[str]) -> None:
    lines = [f'<?xml version="1.0" encoding="UTF-8"?>\n<doi_batch_diagnostic status="completed" sp="agency">\n'
             f"<submission_id>{submission_id}</submission_id><batch_id>{batch_id}</batch_id>\n"]
    lines += [f'<record_diagnostic status="Success"><doi>{d}</doi><msg>Successfully added</msg>'
              "</record_diagnostic>\n" for d in dois]
    n = len(dois)
    lines.append(f"<batch_data><record_count>{n}</record_count><success_count>{n}</success_count>"
                 "<warning_count>0</warning_count><failure_count>0</failure_count></batch_data>\n"
                 "</doi_batch_diagnostic>\n")
    path.write_text("".join(lines), encoding="utf-8")


def generate(batch_dir: Path, records: int, per_batch: int) -> list[Path]:
    files = []
    submission_id, made = 0, 0
    while made < records:
        submission_id += 1
        count = min(per_batch, records - made)
        folder = batch_dir / "bench" / "2026" / "11" / str(submission_id)
        folder.mkdir(parents=True)
        batch_id = f"bench-{submission_id}"
        dois = write_batch(folder / "batch.xml", count, seed=submission_id, batch_id=batch_id)
        write_log(folder / "log.xml", submission_id, batch_id, dois)
        files.append(folder / "batch.xml")
        made += count
    return files


def rows_of(svc) -> dict:
    with svc.db.sessions() as session:
        return {model: [{c.name: getattr(row, c.name) for c in model.__table__.columns}
                        for row in session.scalars(select(model))]
                for model in TABLES}


def floor_seconds(svc, files: list[Path], rows: dict) -> float:
    """Bare parse of every file + one bulk insert of the load's rows into the emptied tables."""
    with svc.db.transaction() as session:
        for model in reversed(TABLES):
            session.execute(delete(model))
    start = time.perf_counter()
    for path in files:
        etree.parse(str(path), etree.XMLParser(**hardened_parser_options()))
    with svc.db.transaction() as session:
        for model in TABLES:
            session.connection().execute(insert(model.__table__), rows[model])
    return time.perf_counter() - start


def run(label: str, database_url: str, records: int, per_batch: int, work: Path) -> None:
    batch_dir = work / "batches"
    files = generate(batch_dir, records, per_batch)
    settings = load_settings(environ={}, data_dir=work / "var", batch_dir=batch_dir, database_url=database_url,
                             run_worker=False, run_scheduler=False, password_time_cost=1)
    svc = build_agency(settings)
    try:
        svc.mddb  # built once per process (templates compiled), as in a running service,
        settle_startup_heap()  # which also leaves its start-up objects out of garbage collection
        start = time.perf_counter()
        report = svc.mddb.run()
        load = time.perf_counter() - start
        indexed = sum(f.indexed for f in report.loaded)
        assert indexed == records and not report.failed, report.summary()
        rows = rows_of(svc)
        floor = floor_seconds(svc, files, rows)
    finally:
        svc.db.engine.dispose()
    print(f"{label}: loaded {indexed} records from {len(files)} batch files in {load:.2f} s = "
          f"{indexed / load:,.0f} records/s; floor (bare parse + one bulk insert of the same "
          f"{sum(len(v) for v in rows.values()):,} rows) {floor:.2f} s = {records / floor:,.0f} records/s; "
          f"load/floor speed = {floor / load:.0%}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--per-batch", type=int, default=10_000, help="records per batch file")
    parser.add_argument("--database-url", default=os.environ.get("AGENCY_TEST_DATABASE_URL", ""),
                        help="also run on this PostgreSQL database (in a throwaway schema)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-mddb-") as tmp:
        work = Path(tmp) / "sqlite"
        run("SQLite", f"sqlite:///{work / 'agency.db'}", args.records, args.per_batch, work)
        if args.database_url:
            with scratch_database(args.database_url, Path(tmp) / "unused.db") as url:
                run("PostgreSQL", url, args.records, args.per_batch, Path(tmp) / "pg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
