"""The several-process topology as an operator runs it: gunicorn web processes serving only, and
``agency worker`` processes doing the work (one of them elected to run the scheduler)."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from live_server import free_port


@dataclass
class Topology:
    web: subprocess.Popen
    workers: list[subprocess.Popen]
    url: str
    logs: Path
    _files: list = field(default_factory=list)

    def start_worker(self, env: dict) -> subprocess.Popen:
        number = len(self.workers) + 1
        out = open(self.logs / f"worker-{number}.log", "wb")
        self._files.append(out)
        process = subprocess.Popen([sys.executable, "-m", "agency.cli", "worker"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
        self.workers.append(process)
        return process

    def output(self) -> str:
        return "".join(path.read_text(errors="replace") for path in sorted(self.logs.glob("*.log")))

    def stop(self) -> None:
        for process in [*self.workers, self.web]:
            if process.poll() is None:
                process.terminate()
        for process in [*self.workers, self.web]:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for out in self._files:
            out.close()


def start_topology(env: dict, logs: Path, web_processes: int = 2, workers: int = 3,
                   timeout: float = 90) -> Topology:
    """gunicorn with ``web_processes`` sync workers on a free port, and ``workers`` worker processes."""
    logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    web_log = open(logs / "web.log", "wb")
    gunicorn = Path(sys.executable).parent / "gunicorn"
    web = subprocess.Popen([str(gunicorn), "--bind", f"127.0.0.1:{port}", "--workers", str(web_processes),
                            "agency.wsgi:app"], env=env, stdout=web_log, stderr=subprocess.STDOUT)
    topology = Topology(web, [], f"http://127.0.0.1:{port}", logs, [web_log])
    for _ in range(workers):
        topology.start_worker(env)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(topology.url + "/readyz", timeout=5).status_code == 200:
                return topology
        except (requests.ConnectionError, requests.Timeout):
            pass
        if web.poll() is not None or time.monotonic() > deadline:
            topology.stop()
            raise RuntimeError("the web processes did not start:\n" + topology.output()[-3000:])
        time.sleep(0.2)
