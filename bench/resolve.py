"""Resolution throughput against a real gunicorn server, next to a trivial route measured in the same run.

    .venv/bin/python bench/resolve.py                       # 100,000 DOIs, SQLite, 10 s per route
    .venv/bin/python bench/resolve.py --dois 5000 --seconds 3
    .venv/bin/python bench/resolve.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Registers the DOIs with ``agency.handles.store.BatchRegistration`` in chunks (as the
worker does), starts gunicorn on ``agency.wsgi:app`` with the worker count its
documentation recommends ((2 x cores) + 1, sync workers), then load-tests
``/healthz`` (no database) and ``/{doi}`` (a random registered DOI, expecting
302) in alternating rounds, from client processes on the same machine. Prints
requests/s and latency percentiles for both, and resolution as a percentage of
the trivial route (goal: at least 70%), and the server's CPU time per request
for each (read from /proc), which stays meaningful when other work shares the
machine. A PostgreSQL URL gets a throwaway schema, dropped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from agency.accounts import create_account  # noqa: E402
from agency.config import load_settings  # noqa: E402
from agency.deposit.extraction import DepositRecord  # noqa: E402
from agency.handles.store import BatchRegistration  # noqa: E402
from agency.services import build_agency  # noqa: E402
from scratch import free_port, scratch_database  # noqa: E402

PREFIX = "10.5555"
CHUNK = 1000


def doi_of(number: int) -> str:
    return f"{PREFIX}/bench.{number}"


def register_dois(settings, count: int) -> float:
    """Register ``count`` DOIs through the handle store; returns the seconds it took."""
    svc = build_agency(settings)
    with svc.db.transaction() as session:
        registrant = create_account(session, svc.passwords, "bench", "bench@example.org", "bench-password",
                                    [PREFIX])
    registration = BatchRegistration(registrant, submission_id=0, ttl=settings.handle_ttl)
    started = time.perf_counter()
    for start in range(0, count, CHUNK):
        records = [DepositRecord(seq=n + 1, doi=doi_of(n), url=f"https://example.org/articles/{n}",
                                 timestamp="20240101000000", content_type="journal_article")
                   for n in range(start, min(start + CHUNK, count))]
        with svc.db.transaction() as session:
            registration.register(session, records)
    elapsed = time.perf_counter() - started
    svc.db.engine.dispose()
    return elapsed


def start_gunicorn(settings, workers: int, port: int, log_path: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env.update({
        "AGENCY_DATA_DIR": str(settings.data_dir), "AGENCY_BATCH_DIR": str(settings.batch_dir),
        "AGENCY_DATABASE_URL": settings.effective_database_url, "AGENCY_RUN_WORKER": "false",
        "AGENCY_RUN_SCHEDULER": "false",
        # Metrics on, as in production under gunicorn: every worker's counters in shared files.
        "PROMETHEUS_MULTIPROC_DIR": str(log_path.parent / "prometheus"),
    })
    (log_path.parent / "prometheus").mkdir(exist_ok=True)
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [str(gunicorn), "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--worker-class", "sync",
               "--log-level", "warning", "agency.wsgi:app"]
    log = open(log_path, "wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{log_path.read_text()[-3000:]}")
        try:
            status, _ = one_request(port, "/healthz")
            if status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("gunicorn did not start within 60 s")


def one_request(port: int, path: str) -> tuple[int, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    finally:
        conn.close()


def client_loop(args: tuple) -> tuple[int, int, list[float]]:
    """One client process: requests for ``seconds``; returns (ok, errors, latencies)."""
    port, route, seconds, dois, expected, seed = args
    rng = random.Random(seed)
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        path = "/healthz" if route == "trivial" else "/" + doi_of(rng.randrange(dois))
        try:
            status, latency = one_request(port, path)
        except OSError:
            errors += 1
            continue
        if status == expected:
            latencies.append(latency)
        else:
            errors += 1
    return len(latencies), errors, latencies


def server_cpu_seconds(master_pid: int) -> float:
    """CPU time (user + system) of gunicorn's master and workers so far; 0 where /proc is missing."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid == master_pid or ppid == master_pid:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def measure(pool, port: int, route: str, seconds: float, clients: int, dois: int, master_pid: int) -> dict:
    expected = 200 if route == "trivial" else 302
    jobs = [(port, route, seconds, dois, expected, random.random()) for _ in range(clients)]
    cpu_before = server_cpu_seconds(master_pid)
    started = time.perf_counter()
    results = pool.map(client_loop, jobs)
    elapsed = time.perf_counter() - started
    cpu = server_cpu_seconds(master_pid) - cpu_before
    latencies = sorted(x for _, _, lat in results for x in lat)
    return {"ok": sum(r[0] for r in results), "errors": sum(r[1] for r in results), "seconds": elapsed,
            "latencies": latencies, "cpu": cpu}


def merged(rounds: list[dict]) -> dict:
    latencies = sorted(x for r in rounds for x in r["latencies"])
    ok, seconds = sum(r["ok"] for r in rounds), sum(r["seconds"] for r in rounds)
    cpu = sum(r["cpu"] for r in rounds)
    return {"ok": ok, "errors": sum(r["errors"] for r in rounds), "rps": ok / seconds if seconds else 0.0,
            "latencies": latencies, "cpu_us": 1e6 * cpu / ok if ok else float("nan")}


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(round(p / 100 * (len(sorted_values) - 1))))]


def report_line(name: str, result: dict) -> str:
    lat = result["latencies"]
    ms = [percentile(lat, p) * 1000 for p in (50, 90, 99)] + [(lat[-1] if lat else float("nan")) * 1000]
    mean = statistics.fmean(lat) * 1000 if lat else float("nan")
    return (f"{name:<12} {result['ok']:>9} {result['errors']:>7} {result['rps']:>10.0f} "
            f"{mean:>8.2f} {ms[0]:>8.2f} {ms[1]:>8.2f} {ms[2]:>8.2f} {ms[3]:>8.2f} {result['cpu_us']:>10.0f}")


def main() -> int:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dois", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per route")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per route")
    parser.add_argument("--workers", type=int, default=2 * cores + 1, help="gunicorn workers ((2 x cores) + 1)")
    parser.add_argument("--clients", type=int, default=2 * cores, help="load-generating processes")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (a throwaway schema is used)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="agency-bench-resolve-"))
    try:
        if args.database_url:
            with scratch_database(args.database_url, work / "unused.db") as database_url:
                return measure_routes(args, work, database_url)
        return measure_routes(args, work, "")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure_routes(args, work: Path, database_url: str) -> int:
    cores = os.cpu_count() or 1
    settings = load_settings(environ={}, data_dir=work / "var", batch_dir=work / "batches",
                             database_url=database_url, run_worker=False, run_scheduler=False,
                             password_time_cost=1)
    process = None
    try:
        took = register_dois(settings, args.dois)
        backend = "postgresql" if database_url else "sqlite"
        print(f"registered {args.dois:,} DOIs in {took:.1f} s ({args.dois / took:,.0f}/s) on {backend}")
        port = free_port()
        process = start_gunicorn(settings, args.workers, port, work / "gunicorn.log")
        print(f"gunicorn: {args.workers} sync workers on {cores} cores; {args.clients} client processes on the "
              f"same machine; {args.rounds} alternating rounds of {args.seconds / args.rounds:.1f} s per route")
        rounds: dict[str, list[dict]] = {"trivial": [], "resolve": []}
        with multiprocessing.Pool(args.clients) as pool:
            measure(pool, port, "trivial", 1.0, args.clients, args.dois, process.pid)  # warm-up
            measure(pool, port, "resolve", 1.0, args.clients, args.dois, process.pid)
            for _ in range(args.rounds):
                for route in ("trivial", "resolve"):
                    rounds[route].append(measure(pool, port, route, args.seconds / args.rounds, args.clients,
                                                 args.dois, process.pid))
        trivial, resolve = merged(rounds["trivial"]), merged(rounds["resolve"])
        print(f"{'route':<12} {'requests':>9} {'errors':>7} {'req/s':>10} {'mean ms':>8} {'p50 ms':>8} "
              f"{'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'server CPU':>10}")
        print(report_line("/healthz", trivial))
        print(report_line("/{doi} 302", resolve))
        ratio = 100 * resolve["rps"] / trivial["rps"] if trivial["rps"] else 0.0
        verdict = "meets" if ratio >= 70 else "MISSES"
        print(f"resolution throughput = {ratio:.0f}% of the trivial route ({verdict} the 70% goal)")
        print(f"server CPU per request (gunicorn master + workers, µs): trivial {trivial['cpu_us']:.0f}, "
              f"resolution {resolve['cpu_us']:.0f}; the clients share the same cores, so req/s moves with the "
              "machine's load while CPU per request does not")
        return 0
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    raise SystemExit(main())
