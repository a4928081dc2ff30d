"""CNRI's own client library (../shared/tools/hdl-client) against a live agency handle server, TCP and UDP."""

from __future__ import annotations

import pytest
from batchgen import Article

from agency.admin.audit import events
from hdl_wire import PREFIX_SECRET, handle_port, hdl_client, make_prefix_record, value_lines  # noqa: F401
from resolve_data import register

pytestmark = pytest.mark.slow


@pytest.fixture
def served(client, svc, alice, handle_port):
    register(client, svc, [Article("10.5555/Abc.1", url="https://example.org/abc")])
    make_prefix_record(svc)
    return ["--host", "127.0.0.1", "--port", str(handle_port)]


@pytest.mark.parametrize("transport", ["--tcp", "--udp"])
def test_resolution(hdl_client, served, transport):
    result = hdl_client("resolve", *served, transport, "--long", "10.5555/ABC.1")  # any ASCII case
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == "responseCode\t1\tSUCCESS"
    lines = value_lines(result.stdout)
    assert lines[1][1:3] == ["URL", "https://example.org/abc"]
    assert lines[1][5:7] == ["relative", "rwr-"]
    # HS_ADMIN 100: all 12 permissions (0x0fff) for 0.NA/10.5555 index 200, RFC 3651 encoding.
    assert lines[100][1:3] == ["HS_ADMIN", "hex:0fff" + "0000000c" + b"0.NA/10.5555".hex() + "000000c8"]


@pytest.mark.parametrize("transport", ["--tcp", "--udp"])
def test_filters_and_not_found(hdl_client, served, transport):
    by_type = hdl_client("resolve", *served, transport, "--type", "URL", "10.5555/abc.1")
    assert list(value_lines(by_type.stdout)) == [1]
    by_index = hdl_client("resolve", *served, transport, "--index", "100", "10.5555/abc.1")
    assert list(value_lines(by_index.stdout)) == [100]
    hierarchy = hdl_client("resolve", *served, transport, "--type", "HS_", "0.NA/10.5555")
    assert hierarchy.stdout.startswith("responseCode\t200\t")  # "HS_" is a type, not a hierarchy
    missing = hdl_client("resolve", *served, transport, "--type", "EMAIL", "10.5555/abc.1")
    assert missing.returncode == 1 and missing.stdout.startswith("responseCode\t200\t")
    unknown = hdl_client("resolve", *served, transport, "10.5555/nope")
    assert unknown.stdout.startswith("responseCode\t100\t")
    elsewhere = hdl_client("resolve", *served, transport, "10.9999/abc")
    assert elsewhere.stdout.startswith("responseCode\t301\t")


def test_secret_key_is_never_sent_to_anonymous_clients(hdl_client, served):
    record = hdl_client("resolve", *served, "--long", "0.NA/10.5555")
    lines = value_lines(record.stdout)
    assert sorted(lines) == [1, 100, 101, 200]
    assert lines[1][1:3] == ["HS_SERV", "0.NA/10"]
    assert lines[200][1] == "HS_VLIST"
    asked = hdl_client("resolve", *served, "--index", "300", "0.NA/10.5555")
    assert asked.stdout.startswith("responseCode\t200\t")


@pytest.mark.parametrize("transport", ["--tcp", "--udp"])
def test_site_info(hdl_client, served, transport, handle_port):
    result = hdl_client("resolve", "--siteinfo", *served, transport)
    assert result.returncode == 0, result.stdout + result.stderr
    server = next(line for line in result.stdout.splitlines() if line.startswith("server"))
    assert "address=127.0.0.1" in server and "publicKeyBytes=" in server
    assert f"adm+qry/TCP/{handle_port}" in server and f"adm+qry/UDP/{handle_port}" in server


@pytest.mark.parametrize("version", ["2.1", "2.11"])  # the SHA-1 and the PBKDF2-HMAC-SHA1 answer schemes
def test_administration_round_trip(hdl_client, served, svc, version):
    auth = ["--auth-handle", "0.NA/10.5555", "--auth-index", "300", "--secret", PREFIX_SECRET, "--hash-secret",
            "--version", version]
    created = hdl_client("admin", "create", *served, *auth, "--value", "1:URL:https://example.org/new",
                         "10.5555/new.1")
    assert created.returncode == 0, created.stdout + created.stderr
    assert value_lines(hdl_client("resolve", *served, "10.5555/new.1").stdout)[1][2] == "https://example.org/new"
    assert hdl_client("admin", "add", *served, *auth, "--value", "2:EMAIL:a@example.org", "10.5555/new.1"
                      ).returncode == 0
    assert hdl_client("admin", "modify", *served, *auth, "--value", "1:URL:https://example.org/changed",
                      "10.5555/new.1").returncode == 0
    assert hdl_client("admin", "remove", *served, *auth, "--index", "2", "10.5555/new.1").returncode == 0
    lines = value_lines(hdl_client("resolve", *served, "10.5555/new.1").stdout)
    assert sorted(lines) == [1, 100] and lines[1][2] == "https://example.org/changed"
    # A deposited DOI may be changed by the prefix administrator too (its HS_ADMIN names the prefix's group).
    assert hdl_client("admin", "modify", *served, *auth, "--value", "1:URL:https://example.org/moved",
                      "10.5555/Abc.1").returncode == 0
    assert value_lines(hdl_client("resolve", *served, "10.5555/abc.1").stdout)[1][2] == "https://example.org/moved"
    assert hdl_client("admin", "delete", *served, *auth, "10.5555/new.1").returncode == 0
    assert hdl_client("resolve", *served, "10.5555/new.1").stdout.startswith("responseCode\t100\t")
    with svc.db.sessions() as session:
        trail = [(e.actor, e.action) for e in events(session, subject="handle:10.5555/new.1")]
    assert trail[0] == ("handle-admin:300:0.NA/10.5555", "handle.create")
    assert trail[-1] == ("handle-admin:300:0.NA/10.5555", "handle.delete")


def test_wrong_secret_and_another_prefix(hdl_client, served, svc, bob):
    wrong = hdl_client("admin", "create", *served, "--auth-handle", "0.NA/10.5555", "--auth-index", "300",
                       "--secret", "not-the-secret", "--hash-secret", "--value", "1:URL:https://x.org/", "10.5555/w")
    assert wrong.returncode == 1 and "403" in wrong.stdout
    make_prefix_record(svc, "10.6666", "bob", secret="bob-prefix-secret")
    other = hdl_client("admin", "create", *served, "--auth-handle", "0.NA/10.6666", "--auth-index", "300",
                       "--secret", "bob-prefix-secret", "--hash-secret", "--value", "1:URL:https://x.org/",
                       "10.5555/taken-over")
    assert other.returncode == 1 and other.stdout.startswith("responseCode\t400\t"), other.stdout
    own = hdl_client("admin", "create", *served, "--auth-handle", "0.NA/10.6666", "--auth-index", "300",
                     "--secret", "bob-prefix-secret", "--hash-secret", "--value", "1:URL:https://x.org/", "10.6666/b")
    assert own.returncode == 0, own.stdout
    foreign_doi = hdl_client("admin", "modify", *served, "--auth-handle", "0.NA/10.6666", "--auth-index", "300",
                             "--secret", "bob-prefix-secret", "--hash-secret", "--value", "1:URL:https://evil.org/",
                             "10.5555/abc.1")
    assert foreign_doi.returncode == 1 and foreign_doi.stdout.startswith("responseCode\t400\t")
    assert value_lines(hdl_client("resolve", *served, "10.5555/abc.1").stdout)[1][2] == "https://example.org/abc"


def test_several_server_processes_share_the_port(hdl_client, client, svc, alice, settings):
    """`agency handle-server --processes 2`: a challenge issued by one process may be answered to the other."""
    import subprocess
    import sys

    from resolve_server import free_port, server_environment

    register(client, svc, [Article("10.5555/Abc.1", url="https://example.org/abc")])
    make_prefix_record(svc)
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "agency.cli", "handle-server", "--port", str(port),
                                "--processes", "2"], env=server_environment(settings), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        assert "2 processes" in process.stdout.readline()
        where = ["--host", "127.0.0.1", "--port", str(port)]
        auth = ["--auth-handle", "0.NA/10.5555", "--auth-index", "300", "--secret", PREFIX_SECRET, "--hash-secret"]
        for n in range(4):
            made = hdl_client("admin", "create", *where, *auth, "--value", f"1:URL:https://example.org/{n}",
                              f"10.5555/multi.{n}")
            assert made.returncode == 0, made.stdout + made.stderr
        for transport in ("--udp", "--tcp"):
            for n in range(4):
                got = hdl_client("resolve", *where, transport, f"10.5555/multi.{n}")
                assert value_lines(got.stdout)[1][2] == f"https://example.org/{n}"
    finally:
        process.terminate()
        process.wait(timeout=20)


def server_public_key(hdl_client, served) -> str:
    """The server's public key as a client learns it: from the site information (HS_PUBKEY encoding, hex)."""
    site = hdl_client("resolve", "--siteinfo", "--long", *served)
    return next(line.split("=", 1)[1] for line in site.stdout.splitlines() if line.startswith("# publicKey="))


def other_public_key() -> str:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from agency.handles.protocol.site import public_key_bytes

    return public_key_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048)).hex()


@pytest.mark.parametrize("transport", ["--tcp", "--udp"])
def test_certified_responses_are_verified_by_the_client(hdl_client, served, transport):
    """CT set: CNRI's library checks the response's signature with the key from the site information, and
    refuses the same response checked with another key (so it did check)."""
    certify = ["--certify", "--server-pubkey", "hex:" + server_public_key(hdl_client, served)]
    signed = hdl_client("resolve", *served, transport, *certify, "10.5555/ABC.1")
    assert signed.returncode == 0, signed.stdout + signed.stderr
    assert value_lines(signed.stdout)[1][1:3] == ["URL", "https://example.org/abc"]
    # An error response and a referral-free refusal are signed too.
    assert hdl_client("resolve", *served, transport, *certify, "10.5555/nope").stdout.startswith("responseCode\t100\t")
    assert hdl_client("resolve", *served, transport, *certify, "10.9999/x").stdout.startswith("responseCode\t301\t")
    # The version the answer is in decides what is signed besides header and body: older ones too.
    for version in ("2.1", "2.6", "2.7"):
        older = hdl_client("resolve", *served, transport, "--version", version, *certify, "10.5555/abc.1")
        assert older.returncode == 0, version + older.stdout + older.stderr
    forged = hdl_client("resolve", *served, transport, "--certify", "--server-pubkey", "hex:" + other_public_key(),
                        "10.5555/abc.1")
    assert forged.returncode == 2 and "MISSING_OR_INVALID_SIGNATURE" in forged.stdout, forged.stdout


@pytest.mark.parametrize("transport", ["--tcp", "--udp"])  # over UDP the signed site information is split
def test_certified_site_info(hdl_client, served, transport):
    key = server_public_key(hdl_client, served)
    signed = hdl_client("resolve", "--siteinfo", *served, transport, "--certify", "--server-pubkey", "hex:" + key)
    assert signed.returncode == 0, signed.stdout + signed.stderr
    assert any(line.startswith("server") for line in signed.stdout.splitlines())
    forged = hdl_client("resolve", "--siteinfo", *served, transport, "--certify", "--server-pubkey",
                        "hex:" + other_public_key())
    assert forged.returncode == 2 and "MISSING_OR_INVALID_SIGNATURE" in forged.stdout, forged.stdout
