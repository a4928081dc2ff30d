"""Clients nobody here wrote, against a real `agency serve` process: pyhandle's REST client writes, and CNRI's
client reads the same handles over the Handle protocol server `agency serve` runs when AGENCY_HANDLE_PORT is set."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hdl_wire import hdl_client, value_lines  # noqa: F401
from resolve_server import free_port, running_server, server_environment

pytestmark = pytest.mark.slow
SECRET = "live-prefix-secret-1"


def _agency(env: dict, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agency.cli", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def live(settings, monkeypatch):
    port = free_port()
    monkeypatch.setenv("AGENCY_HANDLE_REST_INSECURE_WRITES", "1")
    monkeypatch.setenv("AGENCY_HANDLE_PORT", str(port))
    env = server_environment(settings)
    assert _agency(env, "accounts", "create", "press", "--email", "p@example.org", stdin="press-password\n"
                   ).returncode == 0
    made = _agency(env, "prefixes", "create", "20.500.12345", "--account", "press")
    assert made.returncode == 0, made.stderr
    assert "0.NA/20.500.12345 written" in made.stdout
    keyed = _agency(env, "prefixes", "secret", "20.500.12345", stdin=SECRET + "\n")
    assert keyed.returncode == 0, keyed.stderr
    with running_server(settings) as url:
        yield url, port


def test_pyhandle_registers_modifies_and_deletes(live, hdl_client):
    from pyhandle.handleclient import RESTHandleClient

    url, handle_port = live
    client = RESTHandleClient(url, username="300:0.NA/20.500.12345", password=SECRET, HTTPS_verify=False)
    handle = "20.500.12345/repository-item-1"
    assert client.register_handle(handle, "https://repository.example.org/items/1") == handle
    assert client.get_value_from_handle(handle, "URL") == "https://repository.example.org/items/1"
    client.modify_handle_value(handle, URL="https://repository.example.org/items/1-moved", EMAIL="r@example.org")
    assert client.get_value_from_handle(handle, "URL") == "https://repository.example.org/items/1-moved"
    # The same handle over the Handle protocol, from CNRI's client.
    resolved = hdl_client("resolve", "--host", "127.0.0.1", "--port", str(handle_port), "--udp", handle)
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
    assert "https://repository.example.org/items/1-moved" in resolved.stdout
    assert "r@example.org" in resolved.stdout
    client.delete_handle_value(handle, "EMAIL")
    assert client.get_value_from_handle(handle, "EMAIL") is None
    client.delete_handle(handle)
    assert client.retrieve_handle_record(handle) is None
    gone = hdl_client("resolve", "--host", "127.0.0.1", "--port", str(handle_port), handle)
    assert gone.stdout.startswith("responseCode\t100\t")


def test_pyhandle_with_a_wrong_secret_cannot_write(live):
    from pyhandle.handleexceptions import HandleAuthenticationError
    from pyhandle.handleclient import RESTHandleClient

    url, _port = live
    client = RESTHandleClient(url, username="300:0.NA/20.500.12345", password="wrong-secret-x",
                              HTTPS_verify=False)
    with pytest.raises((HandleAuthenticationError, Exception)):
        client.register_handle("20.500.12345/nope", "https://example.org/")
    assert client.retrieve_handle_record("20.500.12345/nope") is None
