"""A real agency server process on a free loopback port, for the tests that talk HTTP to it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.error import URLError
from urllib.request import urlopen

from agency.config import Settings

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "AGENCY_DATA_DIR": str(settings.data_dir), "AGENCY_BATCH_DIR": str(settings.batch_dir),
        "AGENCY_DATABASE_URL": settings.effective_database_url, "AGENCY_RUN_WORKER": "false",
        "AGENCY_RUN_SCHEDULER": "false", "AGENCY_PASSWORD_TIME_COST": "1",
    })
    return env


@contextmanager
def running_server(settings: Settings, server: str = "serve", workers: int = 2) -> Iterator[str]:
    """Start ``agency serve`` (waitress) or gunicorn with ``agency.wsgi``; yield its base URL."""
    port = free_port()
    if server == "gunicorn":
        command = [str(VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
                   "--log-level", "warning", "agency.wsgi:app"]
    else:
        command = [sys.executable, "-m", "agency.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    log_path = settings.data_dir / f"server-{port}.log"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=server_environment(settings), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, process, log_path)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(base: str, process: subprocess.Popen, log_path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urlopen(base + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (URLError, ConnectionError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"server did not answer within {seconds}s:\n{log_path.read_text()[-3000:]}")


def raw_request(base: str, request_line: bytes, timeout: float = 10) -> tuple[int, bytes]:
    """Send one request line exactly as given (bytes no HTTP client would send); return status and body."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request_line + b"\r\nHost: " + host.encode() + b"\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body
