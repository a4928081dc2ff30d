"""Web interface pages against a real `agency serve` process, next to a trivial route measured in the same run.

    .venv/bin/python bench/ui.py                                  # 10,000 submissions, 100,000 records, SQLite
    .venv/bin/python bench/ui.py --submissions 2000 --records 20000 --rounds 10
    .venv/bin/python bench/ui.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Fills the database directly (bulk inserts: one account with ``--submissions``
finished submissions, a few queued and one in process, and one submission of
``--records`` per-record results), starts ``agency serve`` (waitress) with the
worker and scheduler off, signs in through the sign-in form, then times, for
each page, the time to first byte (request sent → status line and headers read)
and the full load (the page's body and its one stylesheet), over ``--rounds``
requests on a kept-alive connection. The floor is ``/healthz`` (no database, no
template) in the same run; each page is printed with its ratio to the floor.
Pages are paginated (50 rows): what is measured is that no page grows with the
account's history or the submission's size, deep pages included.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402

from agency.accounts import create_account  # noqa: E402
from agency.config import load_settings  # noqa: E402
from agency.models import RecordResult, Submission  # noqa: E402
from agency.models.types import utcnow  # noqa: E402
from agency.services import build_agency  # noqa: E402
from scratch import free_port, scratch_database  # noqa: E402

LOGIN, PASSWORD = "bench", "bench-password"
CHUNK = 5000


def fill(settings, submissions: int, records: int) -> int:
    """The account, its submissions and one large submission's results; returns the large one's id."""
    svc = build_agency(settings)
    with svc.db.transaction() as session:
        account = create_account(session, svc.passwords, LOGIN, "bench@example.org", PASSWORD, ["10.5555"])
    start = utcnow() - timedelta(days=30)
    rows = [{"account_id": account.id, "kind": "deposit", "status": "completed", "file_name": f"batch-{i}.xml",
             "doi_batch_id": f"b{i}", "received_at": start + timedelta(seconds=i), "completed_at": start,
             "record_count": 10, "success_count": 9, "failure_count": 1, "records_done": 10}
            for i in range(submissions)]
    rows += [{"account_id": account.id, "kind": "deposit", "status": status, "file_name": f"{status}.xml",
              "received_at": utcnow(), "record_count": 100, "records_done": 40 if status == "processing" else 0}
             for status in ("processing", "queued", "queued", "queued")]
    with svc.db.transaction() as session:
        for begin in range(0, len(rows), CHUNK):
            session.execute(insert(Submission), rows[begin:begin + CHUNK])
        big = Submission(account_id=account.id, kind="deposit", status="completed", file_name="large.xml",
                         received_at=utcnow(), completed_at=utcnow(), record_count=records,
                         success_count=records - records // 100, failure_count=records // 100, records_done=records)
        session.add(big)
        session.flush()
        big_id = big.id
    for begin in range(0, records, CHUNK):
        batch = [{"submission_id": big_id, "seq": seq, "doi": f"10.5555/large.{seq}",
                  "status": "Failure" if seq % 100 == 0 else "Success",
                  "message": "Prefix not owned" if seq % 100 == 0 else "Successfully added",
                  "outcome": "prefix" if seq % 100 == 0 else "added"} for seq in range(begin + 1,
                                                                                     min(begin + CHUNK, records) + 1)]
        with svc.db.transaction() as session:
            session.execute(insert(RecordResult), batch)
    if svc.db.dialect == "postgresql":  # fresh statistics, as autovacuum would gather after a bulk load
        with svc.db.transaction() as session:
            session.execute(text("ANALYZE submissions"))
            session.execute(text("ANALYZE record_results"))
    svc.db.engine.dispose()
    return big_id


def start_server(env: dict, port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "agency.cli", "serve", "--host", "127.0.0.1", "--port",
                                str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        if "agency serving on" in line:
            break
    else:
        raise RuntimeError("the server did not start")
    threading.Thread(target=process.stdout.read, daemon=True).start()  # keep its output flowing
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the server does not answer")


class Client:
    """One kept-alive connection carrying the session cookie."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.cookie = ""

    def request(self, method: str, path: str, body: str | None = None) -> tuple[float, float, int, bytes]:
        """(seconds to first byte, seconds to the last byte, status, body)."""
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers)
        response = response_headers = self.conn.getresponse()
        first = time.perf_counter() - started
        data = response.read()
        cookie = response_headers.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return first, time.perf_counter() - started, response.status, data

    def sign_in(self) -> None:
        _, _, _, page = self.request("GET", "/ui/sign-in")
        token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
        _, _, status, _ = self.request("POST", "/ui/sign-in", urlencode(
            {"csrf_token": token, "login": LOGIN, "password": PASSWORD}))
        assert status == 302, status


def measure(client: Client, path: str, rounds: int, with_stylesheet: bool) -> tuple[list[float], list[float], int]:
    firsts, fulls, size = [], [], 0
    for _ in range(rounds):
        first, full, status, body = client.request("GET", path)
        assert status == 200, (path, status, body[:300])
        if with_stylesheet:
            full += client.request("GET", "/static/style.css")[1]
        firsts.append(first)
        fulls.append(full)
        size = len(body)
    return firsts, fulls, size


def report(name: str, firsts: list[float], fulls: list[float], size: int, floor: float) -> None:
    ttfb, full = statistics.median(firsts), statistics.median(fulls)
    p95 = sorted(fulls)[max(0, int(len(fulls) * 0.95) - 1)]
    print(f"{name:<44} TTFB {ttfb * 1000:7.1f} ms  full load {full * 1000:7.1f} ms (p95 {p95 * 1000:7.1f})  "
          f"{size / 1024:6.1f} KiB  = {ttfb / floor:5.1f}x the floor's TTFB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, scratch_database(args.database_url, Path(tmp) / "ui.db") as url:
        settings = load_settings(environ={}, data_dir=Path(tmp) / "var", batch_dir=Path(tmp) / "batches",
                                 database_url=url, password_time_cost=1, run_worker=False, run_scheduler=False)
        started = time.perf_counter()
        big = fill(settings, args.submissions, args.records)
        print(f"filled {args.submissions:,} submissions and {args.records:,} records in "
              f"{time.perf_counter() - started:.1f} s ({'PostgreSQL' if args.database_url else 'SQLite'})")
        env = {**os.environ, "AGENCY_DATA_DIR": str(settings.data_dir), "AGENCY_BATCH_DIR": str(settings.batch_dir),
               "AGENCY_DATABASE_URL": url, "AGENCY_PASSWORD_TIME_COST": "1", "AGENCY_RUN_WORKER": "0",
               "AGENCY_RUN_SCHEDULER": "0"}
        port = free_port()
        server = start_server(env, port)
        try:
            client = Client(port)
            client.sign_in()
            floor_firsts, floor_fulls, floor_size = measure(client, "/healthz", args.rounds, with_stylesheet=False)
            floor = statistics.median(floor_firsts)
            report("floor: /healthz", floor_firsts, floor_fulls, floor_size, floor)
            last_page = max(1, (args.records + 49) // 50)
            for name, path in (
                    (f"dashboard ({args.submissions:,} submissions)", "/ui/"),
                    (f"submission, {args.records:,} records, page 1", f"/ui/submissions/{big}"),
                    (f"same, last page ({last_page:,})", f"/ui/submissions/{big}?page={last_page}"),
                    ("same, failures only, page 10", f"/ui/submissions/{big}?status=Failure&page=10"),
                    ("same, DOI search", f"/ui/submissions/{big}?doi=large.99999")):
                firsts, fulls, size = measure(client, path, args.rounds, with_stylesheet=True)
                report(name, firsts, fulls, size, floor)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print("(a 2-core machine shared with other work: figures are noisy; compare the ratios)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
