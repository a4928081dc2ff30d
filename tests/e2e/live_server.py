"""Start the real service (`agency serve`) as a separate process on a free loopback port."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    process: subprocess.Popen
    url: str
    output: list[str]
    env: dict

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def agency_env(tmp_path: Path, database_url: str, **extra: str) -> dict:
    env = dict(os.environ)
    env.update({
        "AGENCY_DATA_DIR": str(tmp_path / "var"),
        "AGENCY_BATCH_DIR": str(tmp_path / "batches"),
        "AGENCY_DATABASE_URL": database_url,
        "AGENCY_PASSWORD_TIME_COST": "1",
    })
    env.update(extra)
    return env


def start_server(env: dict, *args: str, timeout: float = 30) -> LiveServer:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "agency.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    output: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            raise RuntimeError("server exited:\n" + "".join(output))
        output.append(line)
        if re.search(r"agency serving on", line):
            break
    # Keep reading what the server prints: a full pipe would block its logging, and with it every thread.
    threading.Thread(target=lambda: output.extend(process.stdout), daemon=True).start()
    for _ in range(100):
        try:
            requests.get(url + "/static/style.css", timeout=1)
            return LiveServer(process, url, output, env)
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not answer:\n" + "".join(output))
