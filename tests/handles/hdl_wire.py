"""Test aids for the Handle protocol: a live in-process server, raw RFC 3652 requests, and CNRI's client.

The raw requests are built here byte by byte (not with agency's codec), so the
server is checked against the RFC's layout, not against itself.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from agency.handles.prefix_records import create_prefix_record, parse_reference, set_prefix_secret
from agency.services import handle_audit

HDL_CLIENT = Path(__file__).resolve().parents[2].parent / "shared" / "tools" / "hdl-client"
PREFIX_SECRET = "prefix-secret-10.5555"


def u32(n: int) -> bytes:
    return struct.pack(">I", n & 0xFFFFFFFF)


def text(s: str | bytes) -> bytes:
    raw = s.encode() if isinstance(s, str) else s
    return u32(len(raw)) + raw


def request(op: int, body: bytes, *, version=(2, 11), suggested=(2, 11), flags: int = 0x19000000,
            session: int = 0, request_id: int = 7, credential: bytes = u32(0)) -> bytes:
    proper = struct.pack(">IIIHBBII", op, 0, flags, 0, 0, 0, 0, len(body)) + body + credential
    return struct.pack(">BBBBIIII", version[0], version[1], suggested[0] & 3, suggested[1], session, request_id, 0,
                       len(proper)) + proper


def resolution(handle: str | bytes, indexes=(), types=(), **kw) -> bytes:
    body = text(handle) + u32(len(indexes)) + b"".join(u32(i) for i in indexes)
    body += u32(len(types)) + b"".join(text(t) for t in types)
    return request(1, body, **kw)


def parse(response: bytes) -> dict:
    """Envelope and header fields of a response, and its body."""
    major, minor, _f, _s, session, request_id, sequence, length = struct.unpack(">BBBBIIII", response[:20])
    op, rc, flags, _serial, _rec, _r, expiration, body_length = struct.unpack(">IIIHBBII", response[20:44])
    return {"version": (major, minor), "session": session, "request_id": request_id, "op": op, "rc": rc,
            "flags": flags, "body": response[44:44 + body_length], "length": length}


def tcp_exchange(port: int, data: bytes, timeout: float = 10.0, host: str = "127.0.0.1") -> bytes:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(data)
        head = _read_exactly(sock, 20)
        if not head:
            return b""
        length = struct.unpack(">I", head[16:20])[0]
        return head + _read_exactly(sock, length)


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            return out
        out += chunk
    return out


def udp_exchange(port: int, data: bytes, timeout: float = 5.0, host: str = "127.0.0.1") -> list[bytes]:
    """Send one datagram; every packet of the answer, in arrival order."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(data, (host, port))
        packets = [sock.recv(65535)]
        length = struct.unpack(">I", packets[0][16:20])[0]
        while sum(len(p) - 20 for p in packets) < length:
            packets.append(sock.recv(65535))
        return packets


def udp_message(packets: list[bytes]) -> bytes:
    """Reassemble a multi-packet answer by sequence number (envelope of the first packet kept)."""
    ordered = sorted(packets, key=lambda p: struct.unpack(">I", p[12:16])[0])
    return ordered[0][:20] + b"".join(p[20:] for p in ordered)


def make_prefix_record(svc, prefix: str = "10.5555", login: str = "alice", secret: str = PREFIX_SECRET) -> None:
    with svc.db.transaction() as session:
        create_prefix_record(session, prefix, login, ra_admin=parse_reference(svc.settings.handle_ra_admin),
                             service_handle=svc.settings.handle_service, ttl=svc.settings.handle_ttl,
                             actor="operator:test", audit=handle_audit)
        set_prefix_secret(session, prefix, secret, actor="operator:test", audit=handle_audit)


@pytest.fixture
def handle_port(svc):
    """A live Handle protocol server (TCP and UDP) in this process, on a free loopback port."""
    server = svc.start_handle_server(port=0)
    yield server.port
    svc.stop_background()


@pytest.fixture(scope="session")
def hdl_client(tmp_path_factory):
    """CNRI's client library as a command-line referee, run from a copy (../shared stays untouched)."""
    if not (HDL_CLIENT / "lib" / "hdlclient.jar").is_file():
        pytest.skip(f"CNRI hdl-client not found at {HDL_CLIENT} (../shared is absent)")
    if shutil.which("java") is None:
        pytest.skip("java is not installed: the CNRI hdl-client checks need it")
    lib = tmp_path_factory.mktemp("hdl-client") / "lib"
    shutil.copytree(HDL_CLIENT / "lib", lib)
    classpath = ":".join(str(lib / name) for name in ("hdlclient.jar", "gson-2.10.1.jar", "commons-codec-1.11.jar"))

    def run(tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        main = {"resolve": "hdlref.HdlResolve", "admin": "hdlref.HdlAdmin"}[tool]
        return subprocess.run(["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", classpath, main,
                               *args], capture_output=True, text=True, timeout=timeout)
    return run


def value_lines(output: str) -> dict[int, list[str]]:
    """hdl-resolve's value lines by index."""
    out = {}
    for line in output.splitlines():
        fields = line.split("\t")
        if fields and fields[0].isdigit():
            out[int(fields[0])] = fields
    return out


def wait_until(check, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.05)
    return check()
