"""Prefix records as the Handbook lays them out, the prefix administrator's secret, and the site record file."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys

import pytest

from agency.admin.audit import events
from agency.handles.store import handle_values
from agency.handles.values import AdminRecord, SiteInfo, decode_rsa_public_key, decode_vlist
from resolve_server import server_environment


def agency(settings, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agency.cli", *args], env=server_environment(settings), input=stdin,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def press(settings, svc):
    created = agency(settings, "accounts", "create", "press", "--email", "p@example.org", stdin="press-password\n")
    assert created.returncode == 0, created.stderr
    return settings


def test_prefix_record_values_for_doi_and_handle_prefixes(press, svc):
    for prefix in ("10.5555", "20.500.12345"):
        made = agency(press, "prefixes", "create", prefix, "--account", "press")
        assert made.returncode == 0, made.stderr
        with svc.db.sessions() as session:
            values = {v.index: v for v in handle_values(session, f"0.NA/{prefix}")}
        assert {i: v.type for i, v in values.items()} == {1: "HS_SERV", 100: "HS_ADMIN", 101: "HS_ADMIN",
                                                         200: "HS_VLIST"}
        assert values[1].data == press.handle_service.encode()
        ra = AdminRecord.decode(values[100].data)
        assert f"{ra.index}:{ra.handle}" == press.handle_ra_admin and ra.permission_string == "111111111111"
        own = AdminRecord.decode(values[101].data)
        assert (own.handle, own.index) == (f"0.NA/{prefix}", 200)
        assert [(r.handle, r.index) for r in decode_vlist(values[200].data)] == [(f"0.NA/{prefix}", 300)]


def test_secret_is_stored_hashed_and_hidden(press, svc, client):
    assert agency(press, "prefixes", "create", "10.5555", "--account", "press").returncode == 0
    keyed = agency(press, "prefixes", "secret", "10.5555", stdin="a-very-secret-key\n")
    assert keyed.returncode == 0, keyed.stderr
    with svc.db.sessions() as session:
        key = next(v for v in handle_values(session, "0.NA/10.5555") if v.index == 300)
        trail = [(e.actor.split(":")[0], e.action, e.after) for e in events(session, subject="handle:0.NA/10.5555")]
    assert key.type == "HS_SECKEY" and key.data == hashlib.sha1(b"a-very-secret-key").hexdigest().encode()
    assert not key.public_read and key.admin_read
    assert trail[0][:2] == ("operator", "handle.create")
    assert all("a-very-secret-key" not in str(after) for _, _, after in trail)
    assert 300 not in [v["index"] for v in client.get("/api/handles/0.NA/10.5555").get_json()["values"]]
    # Rotating keeps one key; re-creating the record keeps the key too.
    assert agency(press, "prefixes", "secret", "10.5555", stdin="another-secret-key\n").returncode == 0
    assert agency(press, "prefixes", "create", "10.5555", "--account", "press").returncode == 0
    with svc.db.sessions() as session:
        keys = [v for v in handle_values(session, "0.NA/10.5555") if v.type == "HS_SECKEY"]
    assert [k.data for k in keys] == [hashlib.sha1(b"another-secret-key").hexdigest().encode()]


@pytest.mark.parametrize("args, stdin, message", [
    (["prefixes", "create", "0.NA", "--account", "press"], "", "is not a DOI prefix"),
    (["prefixes", "create", "0.123", "--account", "press"], "", "is not a DOI prefix"),
    (["prefixes", "create", "10.5555/x", "--account", "press"], "", "is not a DOI prefix"),
    (["prefixes", "create", "10.5555", "--account", "nobody"], "", "no account"),
    (["prefixes", "secret", "10.7777"], "long-enough-secret\n", "no prefix record yet"),
    (["prefixes", "secret", "10.5555"], "short\n", "at least 12 characters"),
])
def test_refusals(press, svc, args, stdin, message):
    assert agency(press, "prefixes", "create", "10.5555", "--account", "press").returncode == 0
    refused = agency(press, *args, stdin=stdin)
    assert refused.returncode == 2 and message in refused.stderr


def test_another_accounts_prefix_is_refused(press, svc, bob):
    refused = agency(press, "prefixes", "create", "10.6666", "--account", "press")
    assert refused.returncode == 2 and "belongs to another account" in refused.stderr


def test_site_info_file_and_private_key(press, tmp_path):
    target = tmp_path / "siteinfo.bin"
    written = agency(press, "handle-server", "--site-info", str(target), "--port", "2641")
    assert written.returncode == 0, written.stderr
    site = SiteInfo.decode(target.read_bytes())
    assert site.serial == press.handle_site_serial and site.protocol_version == (2, 11)
    server = site.servers[0]
    assert server.address[-4:] == bytes([127, 0, 0, 1])
    assert [(i.transport, i.port) for i in server.interfaces] == [(1, 2641), (0, 2641), (2, press.handle_http_port)]
    exponent, modulus = decode_rsa_public_key(server.public_key)
    assert exponent == 65537 and modulus.bit_length() == 2048
    key_file = press.data_dir / "handle-server" / "privkey.pem"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    again = agency(press, "handle-server", "--site-info", str(tmp_path / "again.bin"), "--port", "2641")
    assert again.returncode == 0
    assert SiteInfo.decode((tmp_path / "again.bin").read_bytes()).servers[0].public_key == server.public_key
