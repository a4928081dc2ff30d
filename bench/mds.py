"""MDS throughput: DOIs registered per second through DataCite's own client, next to an in-process floor.

Whole path: several client processes, each with the `datacite` package's
DataCiteMDSClient, register DOIs one at a time against a running `agency serve`
(started here): POST /mds/metadata then POST /mds/doi (metadata + URL), DOIs/s.
Floor, measured in the same run on the same kind of database: the same records
read in-process (hardened parse + our kernel-4 XSD + field extraction) and
inserted (handle row, URL value, MDS row) in one transaction.

    python bench/mds.py                        # 2,000 DOIs, 4 client processes, SQLite
    python bench/mds.py --dois 5000 --clients 8 --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "bench"))

from agency.datacite.kernel4 import Kernel4Schema, read_record  # noqa: E402
from agency.handles.doi_syntax import doi_key  # noqa: E402
from agency.handles.store import version_of  # noqa: E402
from agency.models.base import Base  # noqa: E402
from agency.models.types import utcnow  # noqa: E402
from dcgen import record_xml  # noqa: E402
from live_server import agency_env, start_server  # noqa: E402
from scratch import scratch_database  # noqa: E402

PREFIX = "10.5555"


def doi_of(i: int) -> str:
    return f"{PREFIX}/mds-bench-{i}"


def floor(count: int, url: str) -> float:
    """Seconds to read (parse + validate) and insert ``count`` records in-process."""
    import agency.models  # noqa: F401  (every table, so foreign keys resolve)
    from agency.db import make_engine
    from agency.models import Account, DataciteDoi, Handle, HandleValue

    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(Account.__table__).values(id=1, login="floor", email="f@example.org", password_hash="x",
                                                      created_at=utcnow()))
    schema = Kernel4Schema(ROOT / "schemas")
    bodies = [record_xml(doi_of(i), title=f"Data set {i}") for i in range(count)]
    schema.schema()  # compiled once, as a running server has it
    start = time.perf_counter()
    records = [read_record(body, schema) for body in bodies]
    now = utcnow()
    handles, values, rows = [], [], []
    for r in records:
        key = doi_key(r.doi)
        url = f"https://data.example.org/{key}"
        handles.append({"key": key, "name": r.doi, "prefix": PREFIX, "version": version_of("20240101000000"),
                        "revision": 1, "account_id": 1, "submission_id": 0, "interface": "datacite",
                        "created_at": now, "updated_at": now})
        values.append({"handle_key": key, "idx": 1, "type": "URL", "data": url.encode(), "ttl": 86400, "timestamp": now})
        rows.append({"key": key, "doi": r.doi, "prefix": PREFIX, "account_id": 1, "state": "findable",
                     "xml": r.xml, "url": url, "media": "[]", "created_at": now, "updated_at": now})
    with engine.begin() as conn:
        conn.execute(insert(Handle.__table__), handles)
        conn.execute(insert(HandleValue.__table__), values)
        conn.execute(insert(DataciteDoi.__table__), rows)
    elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed


def _client_run(args: tuple[str, list[int]]) -> int:
    from datacite import DataCiteMDSClient

    url, numbers = args
    client = DataCiteMDSClient(username="bench", password="bench-password", prefix=PREFIX, url=url + "/mds/",
                               timeout=120)
    for i in numbers:
        doi = doi_of(i)
        client.metadata_post(record_xml(doi, title=f"Data set {i}").decode())
        client.doi_post(doi, f"https://data.example.org/{doi}")
    return len(numbers)


def whole_path(count: int, clients: int, url: str, folder: Path) -> float:
    env = agency_env(folder, url, AGENCY_RUN_SCHEDULER="0")
    server = start_server(env)
    try:
        subprocess.run([sys.executable, "-m", "agency.cli", "accounts", "create", "bench", "--email",
                        "bench@example.org", "--prefix", PREFIX], input="bench-password\n", text=True,
                       env=env, check=True, capture_output=True)
        _client_run((server.url, [count + 1]))  # warm-up: schema compiled, password checked once
        shares = [(server.url, list(range(k, count, clients))) for k in range(clients)]
        with multiprocessing.get_context("spawn").Pool(clients) as pool:
            start = time.perf_counter()
            done = sum(pool.map(_client_run, shares))
            elapsed = time.perf_counter() - start
        assert done == count, done
        return elapsed
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dois", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--database-url", default=os.environ.get("AGENCY_BENCH_DATABASE_URL"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with scratch_database(args.database_url, folder / "floor.db") as floor_url, \
                scratch_database(args.database_url, folder / "path.db") as path_url:
            floor_s = floor(args.dois, floor_url)
            path_s = whole_path(args.dois, args.clients, path_url, folder)
    kind = "PostgreSQL" if args.database_url else "SQLite"
    print(f"{kind:10} {args.dois} DOIs, {args.clients} MDS client processes: whole path {args.dois / path_s:7.0f} "
          f"DOIs/s ({path_s:.2f} s), floor {args.dois / floor_s:7.0f} DOIs/s ({floor_s:.2f} s), "
          f"ratio {floor_s / path_s:.1%}", flush=True)


if __name__ == "__main__":
    main()
