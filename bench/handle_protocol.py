"""Handle protocol resolution throughput (UDP and TCP) against a live `agency handle-server`, next to a floor.

    .venv/bin/python bench/handle_protocol.py                   # 100,000 handles, SQLite, 8 s per round
    .venv/bin/python bench/handle_protocol.py --handles 5000 --seconds 3
    .venv/bin/python bench/handle_protocol.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Registers the DOIs through the handle store (as deposits do), starts `agency
handle-server` on a free port and load-tests OC_RESOLUTION of random DOIs from
several client processes: UDP (one datagram each way) and TCP (a new
connection per request, as CNRI's client does). The floor, measured in the
same run on the same port, is a bare server built the same way (asyncio TCP,
as many blocking UDP threads as the server has, AGENCY_HANDLE_UDP_THREADS) that
answers every request with a pre-encoded response of the same size, read from
the live server before: everything but decoding,
the database and encoding. Also prints `GET /api/handles/{doi}` over HTTP
(`agency serve`, waitress) for comparison. Goal: UDP and TCP at least 50% of
their floors. Figures on a shared machine are noisy: compare ratios, not
absolute numbers.

On SQLite the server keeps resolution answers while the database is unchanged
(agency/handles/protocol/answer_cache.py): the first request for a DOI reads
the store, later ones do not. So UDP is measured twice: "cold", right after
the server starts (random DOIs of --handles: with 100,000 handles and 8 s
about half of the requests ask a DOI for the first time), and "warm", once
every handle has been asked for once (the steady state of a server whose
cache holds its handles; TCP is measured after that too).
AGENCY_HANDLE_ANSWER_CACHE_ENTRIES=0 measures without the cache. "cpu µs/req"
is the server process's CPU time (user + system) per answered request.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import multiprocessing
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from agency.config import load_settings  # noqa: E402
from resolve import doi_of, percentile, register_dois, server_cpu_seconds  # noqa: E402
from scratch import free_port, scratch_database  # noqa: E402


def resolution_request(handle: str, request_id: int) -> bytes:
    raw = handle.encode()
    body = struct.pack(">I", len(raw)) + raw + b"\0\0\0\0" + b"\0\0\0\0"
    proper = struct.pack(">IIIHBBII", 1, 0, 0x19000000, 0, 0, 0, 0, len(body)) + body + b"\0\0\0\0"
    return struct.pack(">BBBBIIII", 2, 3, 2, 11, 0, request_id, 0, len(proper)) + proper


def read_message(sock: socket.socket) -> bytes:
    data = b""
    while len(data) < 20:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    length = struct.unpack(">I", data[16:20])[0]
    while len(data) < 20 + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def one_exchange(transport: str, port: int, request: bytes, udp: socket.socket | None) -> bytes:
    if transport == "udp":
        udp.sendto(request, ("127.0.0.1", port))
        while True:
            answer = udp.recv(65536)
            if answer[8:12] == request[8:12]:
                return answer
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return read_message(sock)


def client_loop(job: tuple) -> tuple[int, int, list[float]]:
    transport, port, seconds, handles, seed = job
    rng = random.Random(seed)
    udp = None
    if transport == "udp":
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.settimeout(2.0)
    latencies, errors, request_id = [], 0, rng.randrange(1, 2 ** 30)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        request_id += 1
        request = resolution_request(doi_of(rng.randrange(handles)), request_id)
        started = time.perf_counter()
        try:
            answer = one_exchange(transport, port, request, udp)
        except OSError:
            errors += 1
            continue
        if struct.unpack(">I", answer[24:28])[0] == 1:
            latencies.append(time.perf_counter() - started)
        else:
            errors += 1
    return len(latencies), errors, latencies


def ask_each(job: tuple) -> int:
    """Resolve handles ``first``, ``first + step``, ... once each over UDP: what warms the answer cache."""
    port, first, step, handles = job
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.settimeout(2.0)
    asked = 0
    for n in range(first, handles, step):
        try:
            one_exchange("udp", port, resolution_request(doi_of(n), n + 1), udp)
            asked += 1
        except OSError:
            pass
    return asked


def http_loop(job: tuple) -> tuple[int, int, list[float]]:
    _transport, port, seconds, handles, seed = job
    rng = random.Random(seed)
    latencies, errors = [], 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/api/handles/" + doi_of(rng.randrange(handles)))
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
        except OSError:
            ok = False
        finally:
            conn.close()
        if ok:
            latencies.append(time.perf_counter() - started)
        else:
            errors += 1
    return len(latencies), errors, latencies


def measure(pool, loop, transport: str, port: int, seconds: float, clients: int, handles: int,
            server_pid: int) -> dict:
    jobs = [(transport, port, seconds, handles, random.random()) for _ in range(clients)]
    cpu_before = server_cpu_seconds(server_pid)
    started = time.perf_counter()
    results = pool.map(loop, jobs)
    elapsed = time.perf_counter() - started
    cpu = server_cpu_seconds(server_pid) - cpu_before
    latencies = sorted(x for _, _, lat in results for x in lat)
    ok = sum(r[0] for r in results)
    return {"ok": ok, "errors": sum(r[1] for r in results), "rps": ok / elapsed, "latencies": latencies,
            "cpu_us": 1e6 * cpu / max(ok, 1)}


def line(name: str, result: dict, floor: dict | None = None) -> str:
    lat = result["latencies"]
    p50, p99 = (percentile(lat, p) * 1000 for p in (50, 99))
    ratio = f"{100 * result['rps'] / floor['rps']:>5.0f}%" if floor else "     -"
    return (f"{name:<22} {result['ok']:>8} {result['errors']:>6} {result['rps']:>9.0f} {p50:>8.2f} {p99:>8.2f} "
            f"{result['cpu_us']:>9.1f} {ratio}")


# ---------------------------------------------------------------------------
# The floor: same transports, no work

def floor_server(port: int, response: bytes, udp_threads: int) -> None:
    """Answer every request with ``response`` (its request id patched in), over TCP and UDP on ``port``."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", port))

    def udp_loop() -> None:
        while True:
            datagram, peer = udp.recvfrom(65535)
            if len(datagram) >= 20:
                udp.sendto(response[:8] + datagram[8:12] + response[12:], peer)

    for _ in range(udp_threads):
        threading.Thread(target=udp_loop, daemon=True).start()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readexactly(20)
                await reader.readexactly(struct.unpack(">I", head[16:20])[0])
                writer.write(response[:8] + head[8:12] + response[12:])
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(connection, "127.0.0.1", port)
        print("floor ready", flush=True)
        await server.serve_forever()

    asyncio.run(main())


def start(command: list[str], env: dict, ready: str, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "w")
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=log, text=True, cwd=str(ROOT))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        output = process.stdout.readline()
        if ready in output:
            return process
        if not output and process.poll() is not None:
            raise SystemExit(f"{command[2:4]} exited:\n{log_path.read_text()[-3000:]}")
    process.terminate()
    raise SystemExit(f"{command} did not start")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run(args, work: Path, database_url: str) -> int:
    settings = load_settings(environ={}, data_dir=work / "var", batch_dir=work / "batches",
                             database_url=database_url or f"sqlite:///{work / 'agency.db'}", password_time_cost=1)
    print(f"registering {args.handles} handles ...", flush=True)
    seconds = register_dois(settings, args.handles)
    print(f"registered in {seconds:.1f} s", flush=True)
    env = dict(os.environ, AGENCY_DATA_DIR=str(settings.data_dir), AGENCY_BATCH_DIR=str(settings.batch_dir),
               AGENCY_DATABASE_URL=settings.effective_database_url, AGENCY_RUN_WORKER="0",
               AGENCY_RUN_SCHEDULER="0")
    port = free_port()
    results: dict[str, dict] = {}
    with multiprocessing.get_context("fork").Pool(args.clients) as pool:
        server = start([sys.executable, "-m", "agency.cli", "handle-server", "--port", str(port)], env,
                       "handle protocol on", work / "server.log")
        try:
            response = one_exchange("tcp", port, resolution_request(doi_of(0), 1), None)
            results["udp cold"] = measure(pool, client_loop, "udp", port, args.seconds, args.clients, args.handles,
                                          server.pid)
            started = time.perf_counter()
            asked = sum(pool.map(ask_each, [(port, n, args.clients, args.handles) for n in range(args.clients)]))
            print(f"asked each of {asked} handles once in {time.perf_counter() - started:.1f} s", flush=True)
            for transport in ("udp", "tcp"):
                results[transport] = measure(pool, client_loop, transport, port, args.seconds, args.clients,
                                             args.handles, server.pid)
        finally:
            stop(server)
        floor = start([sys.executable, __file__, "--floor-server", str(port), response.hex()], env, "floor ready",
                      work / "floor.log")
        try:
            for transport in ("udp", "tcp"):
                results[f"{transport} floor"] = measure(pool, client_loop, transport, port, args.seconds,
                                                        args.clients, args.handles, floor.pid)
        finally:
            stop(floor)
        http_port = free_port()
        web = start([sys.executable, "-m", "agency.cli", "serve", "--port", str(http_port)], env, "agency serving on",
                    work / "web.log")
        try:
            time.sleep(0.5)
            results["http"] = measure(pool, http_loop, "http", http_port, args.seconds, args.clients, args.handles,
                                      web.pid)
        finally:
            stop(web)
    print(f"\n{args.handles} handles, {args.clients} client processes, {args.seconds:.0f} s each, "
          f"response {len(response)} octets, {os.cpu_count()} cores (shared machine: figures are noisy)")
    print(f"{'':<22} {'ok':>8} {'errors':>6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'cpu µs/req':>9} "
          f"{'floor':>6}")
    print(line("UDP agency, cold", results["udp cold"], results["udp floor"]))
    print(line("UDP agency, warm", results["udp"], results["udp floor"]))
    print(line("UDP floor (bare)", results["udp floor"]))
    print(line("TCP agency", results["tcp"], results["tcp floor"]))
    print(line("TCP floor (bare)", results["tcp floor"]))
    print(line("HTTP /api/handles", results["http"]))
    return 0


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--floor-server":
        # As many receiving threads as the agency's server has (AGENCY_HANDLE_UDP_THREADS): built the same way.
        floor_server(int(sys.argv[2]), bytes.fromhex(sys.argv[3]), udp_threads=load_settings().udp_threads)
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--handles", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=4, help="load-generating processes")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (a throwaway schema is used)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="agency-bench-hdl-"))
    try:
        if args.database_url:
            with scratch_database(args.database_url, work / "unused.db") as database_url:
                return run(args, work, database_url)
        return run(args, work, "")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
