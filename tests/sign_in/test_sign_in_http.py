"""Sign-in throttling through the HTTP interfaces (Flask test client): 429 + Retry-After, 503 when busy."""

from __future__ import annotations

import io

from conftest import basic_headers


def test_wrong_passwords_are_throttled_per_login_with_retry_after(client, alice, svc):
    limit = svc.settings.sign_in_failures_per_login
    for _ in range(limit):
        assert client.get("/v1/deposits", headers=basic_headers("alice", "guess")).status_code == 401
    refused = client.get("/v1/deposits", headers=basic_headers("alice", "guess"))
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= svc.settings.sign_in_window_seconds
    assert "Too many failed sign-ins" in refused.get_json()["error"]["message"]
    # Throttled before the password is checked: the right one is refused too from here.
    assert client.get("/v1/deposits", headers=basic_headers("alice", "alice-password")).status_code == 429
    servlet = client.post("/servlet/deposit", data={"operation": "doMDUpload", "login_id": "alice",
                                                    "login_passwd": "alice-password",
                                                    "fname": (io.BytesIO(b"<x/>"), "b.xml")},
                          content_type="multipart/form-data")
    assert servlet.status_code == 429 and "FAILURE" in servlet.get_data(as_text=True)


def test_an_address_is_throttled_across_logins(client, alice, bob, svc):
    for n in range(svc.settings.sign_in_failures_per_address):
        client.get("/servlet/submissionDownload", query_string={"usr": f"nobody{n}", "pwd": "x",
                                                                 "doi_batch_id": "b"})
    refused = client.get("/servlet/submissionDownload", query_string={"usr": "bob", "pwd": "bob-password",
                                                                       "doi_batch_id": "b"})
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    other = client.get("/v1/deposits", headers=basic_headers("bob", "bob-password"),
                       environ_base={"REMOTE_ADDR": "192.0.2.10"})
    assert other.status_code == 200


def test_no_free_hashing_slot_is_503_with_retry_after(client, alice, svc, monkeypatch):
    from agency.sign_in import HashingSlots

    slots = HashingSlots(slots=1, waiting=0, wait_seconds=0.1)
    monkeypatch.setattr(svc.passwords, "_slots", slots)
    with slots.slot():  # someone else is hashing
        busy = client.get("/v1/deposits", headers=basic_headers("alice", "alice-password"))
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
    assert client.get("/v1/deposits", headers=basic_headers("alice", "alice-password")).status_code == 200
    with slots.slot():  # a remembered success needs no hash, so no slot
        assert client.get("/v1/deposits", headers=basic_headers("alice", "alice-password")).status_code == 200
