"""Deposit throughput: the whole path against a real server, next to a bare floor.

Whole path: POST a generated batch to a running `agency serve` (started here),
wait until the log is written and every handle committed, records/s.
Floor, measured in the same run on the same kind of database: bare lxml parse
+ XSD validation + field extraction + one bulk insert of the same rows into the
same handles table. A second floor also writes every row the path must keep per
record (URL value, record result, citation key) and a log line: the distance to it
is agency's own work (checks, chunks, bookkeeping), the rest is storage.

    python bench/deposit.py                       # 10,000 records, SQLite
    python bench/deposit.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/deposit.py --scale               # also 100,000 records: linearity and peak memory
    python bench/deposit.py --workers 1 2 3 --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

With ``--workers N ...``: the several-process topology instead of `agency serve` alone:
gunicorn (2 web processes, serving only) and N `agency worker` processes; the
records are split into 6 batches from 3 accounts, POSTed by three clients at once, and timed until
every one is completed (records/s for each N, and the ratio to the floor).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from lxml import etree
from sqlalchemy import func, insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "bench"))

from agency.models.base import Base  # noqa: E402
from agency.db import bulk_insert  # noqa: E402
from agency.handles.doi_syntax import doi_key  # noqa: E402
from agency.handles.store import version_of  # noqa: E402
from agency.models import Handle  # noqa: E402
from agency.models.types import utcnow  # noqa: E402
from agency.deposit.validation import SchemaCatalog, hardened_parser  # noqa: E402
from generate import write_batch  # noqa: E402
from live_server import agency_env, start_server  # noqa: E402
from topology import start_topology  # noqa: E402
from scratch import scratch_database  # noqa: E402

NAMESPACE = "http://www.crossref.org/schema/5.3.0"


def scratch_engine(url: str):
    """An engine on ``url`` with every table and one account (id 1) with one submission (id 1)."""
    from agency.db import make_engine
    from agency.models import Account, Submission  # every table, so foreign keys resolve

    engine = make_engine(url)
    Base.metadata.create_all(engine)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(insert(Account.__table__).values(id=1, login="floor", email="f@example.org", password_hash="x",
                                                      created_at=now))
        conn.execute(insert(Submission.__table__).values(id=1, account_id=1, kind="deposit", operation="doMDUpload",
                                                         status="processing", received_at=now))
    return engine


def deposit_schema() -> etree.XMLSchema:
    """The compiled schema, outside the floors' timing (a running service has compiled it already)."""
    return SchemaCatalog(ROOT / "schemas").schema_for(NAMESPACE)


def valid_tree(batch: Path, schema: etree.XMLSchema) -> etree._ElementTree:
    """The batch parsed whole by the hardened parser and validated by libxml2 (the floors' first step)."""
    with open(batch, "rb") as fh:
        tree = etree.parse(fh, hardened_parser())
    assert schema.validate(tree)
    return tree


def handle_row(doi: str, now) -> dict:
    return {"key": doi_key(doi), "name": doi, "prefix": "10.5555", "version": version_of("20240101000000"),
            "revision": 1, "account_id": 1, "submission_id": 1, "created_at": now, "updated_at": now}


def floor(batch: Path, url: str) -> float:
    """Seconds for parse + validate + extract + one bulk insert."""
    engine, schema = scratch_engine(url), deposit_schema()
    start = time.perf_counter()
    tree = valid_tree(batch, schema)
    ns = {"c": NAMESPACE}
    now = utcnow()
    rows = []
    for doi_data in tree.iterfind(".//c:doi_data", ns):
        rows.append(handle_row(doi_data.findtext("c:doi", namespaces=ns), now))
        doi_data.findtext("c:resource", namespaces=ns)  # extracted, as the path does, though this floor stores none
    with engine.begin() as conn:
        conn.execute(insert(Handle.__table__), rows)
    elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed


def stored_floor(batch: Path, url: str, log: Path) -> float:
    """Seconds for the same parse + validate, an extraction of what the path stores, and one bulk insert
    into each table a registered record writes (its handle, URL value, result and citation key), plus
    its line in a log file: what the path must keep, with none of its checks, chunks or bookkeeping."""
    from agency.models import CitationKey, HandleValue, RecordResult

    engine, schema = scratch_engine(url), deposit_schema()
    start = time.perf_counter()
    tree = valid_tree(batch, schema)
    ns = {"c": NAMESPACE}
    now = utcnow()
    handles, values, results, citations = [], [], [], []
    for journal in tree.iterfind(".//c:journal", ns):
        issn = journal.findtext("c:journal_metadata/c:issn", namespaces=ns)
        volume = journal.findtext("c:journal_issue/c:journal_volume/c:volume", namespaces=ns)
        issue = journal.findtext("c:journal_issue/c:issue", namespaces=ns)
        for article in journal.iterfind("c:journal_article", ns):
            row = handle_row(article.findtext("c:doi_data/c:doi", namespaces=ns), now)
            handles.append(row)
            values.append({"handle_key": row["key"],
                           "data": article.findtext("c:doi_data/c:resource", namespaces=ns).encode()})
            results.append({"seq": len(handles), "doi": row["name"]})
            page = article.findtext("c:pages/c:first_page", namespaces=ns)
            year = article.findtext("c:publication_date/c:year", namespaces=ns)
            citations.append({"doi_key": row["key"], "key": f"{issn}|{volume}|{issue}|{page}|{year}",
                              "doi": row["name"]})
    with engine.begin() as conn:  # the handles as the floor above; the rest as the worker writes them
        conn.execute(insert(Handle.__table__), handles)
        bulk_insert(conn, HandleValue.__table__, values,
                    constants={"idx": 1, "type": "URL", "ttl": 86400, "timestamp": func.current_timestamp()})
        bulk_insert(conn, RecordResult.__table__, results, constants={
            "submission_id": 1, "status": "Success", "message": "Successfully added", "outcome": "added"})
        bulk_insert(conn, CitationKey.__table__, citations)
    with open(log, "w", encoding="utf-8") as fh:
        fh.writelines(f'<record_diagnostic status="Success"><doi>{r["doi"]}</doi>'
                      f"<msg>Successfully added</msg></record_diagnostic>\n" for r in results)
        fh.flush()
        os.fsync(fh.fileno())
    elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed


def deposit_and_wait(url: str, batch: Path, auth: tuple[str, str]) -> dict:
    """POST a batch file to a live server and poll until it is completed or refused; its final status."""
    with open(batch, "rb") as fh:
        body = requests.post(url + "/v1/deposits?wait=60", data=fh, auth=auth,
                             headers={"Content-Type": "application/xml"}, timeout=3600).json()
    while body["status"] not in ("completed", "refused"):
        time.sleep(0.05)
        body = requests.get(url + f"/v1/deposits/{body['submission_id']}", auth=auth, timeout=60).json()
    return body


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def whole_path(batch: Path, records: int, url: str, folder: Path) -> tuple[float, float]:
    """Seconds from POST to completed (log written, handles committed), and the server's peak RSS."""
    env = agency_env(folder, url, AGENCY_MAX_BATCH_BYTES=str(2 * 1024**3), AGENCY_RUN_SCHEDULER="0")
    server = start_server(env)
    try:
        subprocess.run([sys.executable, "-m", "agency.cli", "accounts", "create", "bench", "--email",
                        "bench@example.org", "--prefix", "10.5555"], input="bench-password\n", text=True,
                       env=env, check=True, capture_output=True)
        auth = ("bench", "bench-password")
        warm = folder / "warm-up.xml"  # a running service has compiled its schema and templates already
        write_batch(warm, 10, seed=999)
        requests.post(server.url + "/v1/deposits?wait=60", data=warm.read_bytes(), auth=auth,
                      headers={"Content-Type": "application/xml"}, timeout=600).raise_for_status()
        start = time.perf_counter()
        body = deposit_and_wait(server.url, batch, auth)
        elapsed = time.perf_counter() - start
        # Generated pages may repeat within an issue: those records are registered "with conflict" (Warning).
        assert body["counts"]["success_count"] + body["counts"]["warning_count"] == records, body["counts"]
        return elapsed, peak_rss_mb(server.process.pid)
    finally:
        server.stop()


def run(records: int, base_url: str | None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        batch = folder / "batch.xml"
        write_batch(batch, records)
        size = batch.stat().st_size / 1e6
        with scratch_database(base_url, folder / "floor.db") as floor_url, \
                scratch_database(base_url, folder / "stored.db") as stored_url, \
                scratch_database(base_url, folder / "path.db") as path_url:
            floor_s = floor(batch, floor_url)
            path_s, rss = whole_path(batch, records, path_url, folder)
            stored_s = stored_floor(batch, stored_url, folder / "floor-log.xml")
    kind = "PostgreSQL" if base_url else "SQLite"
    print(f"{kind:10} {records:>7} records ({size:.0f} MB): whole path {records / path_s:8.0f} rec/s "
          f"({path_s:.2f} s), floor {records / floor_s:8.0f} rec/s ({floor_s:.2f} s), "
          f"ratio {floor_s / path_s:.0%}; floor writing every stored row {records / stored_s:8.0f} rec/s "
          f"({stored_s:.2f} s), ratio {stored_s / path_s:.0%}; server peak RSS {rss:.0f} MB", flush=True)
    return path_s


TOPOLOGY_BATCHES, TOPOLOGY_ACCOUNTS = 6, ("bench-a", "bench-b", "bench-c")


def topology_path(records: int, url: str, folder: Path, workers: int) -> float:
    """Seconds from the first POST until every batch is completed, with ``workers`` worker processes."""
    from agency.config import load_settings
    from agency.services import build_agency

    env = agency_env(folder, url, AGENCY_MAX_BATCH_BYTES=str(2 * 1024**3), AGENCY_RUN_SCHEDULER="0")
    setup = build_agency(load_settings(environ=env))
    from agency.accounts import create_account

    with setup.db.transaction() as session:
        for number, login in enumerate(TOPOLOGY_ACCOUNTS):
            create_account(session, setup.passwords, login, f"{login}@example.org", "bench-password",
                           [f"10.{5555 + number}"])
    setup.db.engine.dispose()
    files = []
    for number in range(TOPOLOGY_BATCHES):
        path = folder / f"topology-{number}.xml"
        write_batch(path, records // TOPOLOGY_BATCHES, prefix=f"10.{5555 + number % 3}", seed=100 + number)
        files.append((TOPOLOGY_ACCOUNTS[number % 3], path))
    topology = start_topology(env, folder / f"logs-{workers}", web_processes=2, workers=workers)
    try:
        warm = folder / "warm-up.xml"  # every web and worker process compiles its schema and templates once
        write_batch(warm, 10, seed=999)
        for _ in range(2 * (workers + 2)):
            requests.post(topology.url + "/v1/deposits?wait=30", data=warm.read_bytes(), headers={
                "Content-Type": "application/xml", "Connection": "close"}, auth=(TOPOLOGY_ACCOUNTS[0], "bench-password"),
                timeout=600).raise_for_status()
        start = time.perf_counter()

        def post(job: tuple[str, Path]) -> tuple[str, int]:
            login, path = job
            with open(path, "rb") as fh:
                answer = requests.post(topology.url + "/v1/deposits", data=fh, auth=(login, "bench-password"),
                                       headers={"Content-Type": "application/xml"}, timeout=3600)
            answer.raise_for_status()
            return login, answer.json()["submission_id"]

        with ThreadPoolExecutor(len(TOPOLOGY_ACCOUNTS)) as pool:  # three registrants at once
            ids = list(pool.map(post, files))
        posted = time.perf_counter() - start
        for login, submission_id in ids:
            while True:
                body = requests.get(topology.url + f"/v1/deposits/{submission_id}", auth=(login, "bench-password"),
                                    timeout=60).json()
                if body["status"] in ("completed", "refused"):
                    break
                time.sleep(0.05)
        elapsed = time.perf_counter() - start
        print(f"  ({workers} workers: the POSTs took {posted:.2f} s of {elapsed:.2f} s)", flush=True)
        return elapsed
    finally:
        topology.stop()


def run_topology(records: int, base_url: str | None, worker_counts: list[int]) -> None:
    kind = "PostgreSQL" if base_url else "SQLite"
    records = records // TOPOLOGY_BATCHES * TOPOLOGY_BATCHES
    for workers in worker_counts:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            whole = folder / "floor.xml"
            write_batch(whole, records)
            with scratch_database(base_url, folder / "floor.db") as floor_url, \
                    scratch_database(base_url, folder / "path.db") as path_url:
                floor_s = floor(whole, floor_url)
                path_s = topology_path(records, path_url, folder, workers)
        print(f"{kind:10} {workers} worker process(es), {records} records in {TOPOLOGY_BATCHES} batches: "
              f"{records / path_s:8.0f} rec/s ({path_s:.2f} s), floor {records / floor_s:8.0f} rec/s, "
              f"ratio {floor_s / path_s:.0%}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--database-url", default=os.environ.get("AGENCY_BENCH_DATABASE_URL"))
    parser.add_argument("--scale", action="store_true", help="also run 10x the records and report linearity")
    parser.add_argument("--workers", type=int, nargs="+", help="run gunicorn + N `agency worker` processes instead")
    args = parser.parse_args()
    if args.workers:
        run_topology(args.records, args.database_url, args.workers)
        return
    small = run(args.records, args.database_url)
    if args.scale:
        large = run(args.records * 10, args.database_url)
        print(f"linearity: {args.records * 10} records took {large / small:.1f}x the time of {args.records} "
              "(10x would be linear)")


if __name__ == "__main__":
    main()
