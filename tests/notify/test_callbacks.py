"""Notification callbacks: Crossref's headers plus a signature, through the outbox, to a real receiver on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from conftest import ALICE, add_account, basic_headers
from batchgen import deposit_xml, many

from agency.admin.audit import events
from agency.app import create_app
from agency.models import CallbackDelivery
from agency.models.types import utcnow
from agency.notify import callbacks
from agency.services import build_agency

AUTH = basic_headers("alice", "alice-password", None)
CROSSREF_HEADERS = ("CROSSREF-NOTIFY-ENDPOINT", "CROSSREF-EXTERNAL-ID", "CROSSREF-INTERNAL-ID",
                    "CROSSREF-RETRIEVE-URL", "CROSSREF-SERVICE-DATE", "CROSSREF-RETRIEVE-URL-EXPIRATION-DATE")


class Receiver:
    """An HTTP server on loopback answering each request as scripted: a status, or 'hang' (slower than the timeout)."""

    def __init__(self, script: list) -> None:
        self.script = list(script)
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                receiver.requests.append({"path": self.path, "headers": dict(self.headers.items())})
                action = receiver.script.pop(0) if receiver.script else 200
                if action == "hang":
                    time.sleep(1.5)
                    action = 200  # too late: the sender has given up on this attempt
                try:
                    self.send_response(action)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify?from=agency"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def cb_svc(settings):
    agency = build_agency(settings.replace(callback_allow_private=True, callback_timeout_seconds=0.5,
                                           callback_retry_base_seconds=30, callback_max_attempts=5))
    add_account(agency, *ALICE)
    yield agency
    agency.db.engine.dispose()


@pytest.fixture
def cb_client(cb_svc):
    app = create_app(agency=cb_svc)
    app.testing = True
    return app.test_client()


def register(client, url: str, endpoint: str = "ojs-press") -> dict:
    response = client.put("/v1/account/callback", json={"url": url, "endpoint": endpoint}, headers=AUTH)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def deposit_one(svc, client, batch_id: str = "cb-batch-1") -> int:
    response = client.post("/v1/deposits", data=deposit_xml(many("10.5555", 2), batch_id=batch_id),
                           headers=basic_headers("alice", "alice-password"))
    assert response.status_code == 202
    svc.worker.run_until_idle()
    return response.get_json()["submission_id"]


def deliveries(svc) -> list[CallbackDelivery]:
    with svc.db.sessions() as session:
        return list(session.scalars(select(CallbackDelivery).order_by(CallbackDelivery.id)))


def test_callback_is_registered_replaced_shown_without_secret_and_removed_with_audit(cb_svc, cb_client):
    first = register(cb_client, "http://127.0.0.1:9/a")
    assert first["callback"]["secret"] and first["callback"]["endpoint"] == "ojs-press"
    second = register(cb_client, "http://127.0.0.1:9/b", "other")
    assert second["callback"]["secret"] == first["callback"]["secret"]  # receivers need not be reconfigured
    shown = cb_client.get("/v1/account/callback", headers=AUTH).get_json()
    assert shown["callback"] == {"url": "http://127.0.0.1:9/b", "endpoint": "other"}
    assert cb_client.delete("/v1/account/callback", headers=AUTH).status_code == 204
    assert cb_client.delete("/v1/account/callback", headers=AUTH).get_json()["error"]["code"] == "not_found"
    assert cb_client.get("/v1/account/callback", headers=AUTH).get_json()["callback"] is None
    with cb_svc.db.sessions() as session:
        trail = [(e.action, e.actor, e.before, e.after) for e in events(session, subject="account:alice")]
    assert trail == [("callback.set", "account:alice", None, {"url": "http://127.0.0.1:9/a", "endpoint": "ojs-press"}),
                     ("callback.set", "account:alice", {"url": "http://127.0.0.1:9/a", "endpoint": "ojs-press"},
                      {"url": "http://127.0.0.1:9/b", "endpoint": "other"}),
                     ("callback.remove", "account:alice", {"url": "http://127.0.0.1:9/b", "endpoint": "other"}, None)]


@pytest.mark.parametrize("url, words", [
    ("ftp://example.org/x", "http:// or https://"), ("javascript:alert(1)", "http:// or https://"),
    ("http:///nohost", "needs a host"), ("http://user:pw@8.8.8.8/", "no user name"),
    ("http://127.0.0.1:8080/", "loopback"), ("http://10.1.2.3/", "10.1.2.3"), ("http://[::1]/", "::1"),
    ("http://169.254.169.254/latest", "169.254.169.254"), ("http://192.168.0.1/", "192.168.0.1"),
    ("http://8.8.8.8/x y", "white space"), ("http://8.8.8.8/" + "a" * 3000, "longer than"),
])
def test_unusable_or_private_urls_are_refused_unless_allowed(client, alice, url, words):
    response = client.put("/v1/account/callback", json={"url": url, "endpoint": "e"}, headers=AUTH)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "invalid_callback" and words in error["message"]


def test_public_address_is_accepted_and_bad_bodies_are_clear(client, alice):
    assert client.put("/v1/account/callback", json={"url": "https://8.8.8.8/cb", "endpoint": "e"},
                      headers=AUTH).status_code == 200
    assert client.put("/v1/account/callback", data="url=x", headers={**AUTH, "Content-Type": "text/plain"}
                      ).status_code == 415
    assert client.put("/v1/account/callback", data="[1]", headers={**AUTH, "Content-Type": "application/json"}
                      ).status_code == 400
    assert client.put("/v1/account/callback", json={"url": "https://8.8.8.8/", "endpoint": ""},
                      headers=AUTH).status_code == 422
    assert client.put("/v1/account/callback", json={"url": "https://8.8.8.8/"}).status_code == 401


def test_log_ready_notice_fails_times_out_then_is_delivered_exactly_once(cb_svc, cb_client):
    receiver = Receiver([500, "hang", 204])
    try:
        secret = register(cb_client, receiver.url)["callback"]["secret"]
        submission_id = deposit_one(cb_svc, cb_client)
        [notice] = deliveries(cb_svc)
        assert notice.event == "deposit_log" and notice.status == "pending"
        start = utcnow()
        assert cb_svc.callbacks.deliver_due(now=start) == 0  # 500
        [notice] = deliveries(cb_svc)
        assert (notice.status, notice.attempts, notice.last_status) == ("pending", 1, 500)
        assert "HTTP 500" in notice.last_error
        assert notice.next_attempt_at == start + timedelta(seconds=30)
        assert cb_svc.callbacks.deliver_due(now=start + timedelta(seconds=10)) == 0  # not due yet: nothing sent
        assert len(receiver.requests) == 1
        began = time.monotonic()
        assert cb_svc.callbacks.deliver_due(now=start + timedelta(seconds=31)) == 0  # times out
        assert time.monotonic() - began < 1.4  # the 0.5 s timeout, not the receiver's 1.5 s
        [notice] = deliveries(cb_svc)
        assert (notice.status, notice.attempts) == ("pending", 2) and "timed out" in notice.last_error
        assert cb_svc.callbacks.deliver_due(now=start + timedelta(seconds=200)) == 1  # recovered: 204
        assert cb_svc.callbacks.deliver_due(now=start + timedelta(days=2)) == 0  # never again
        [notice] = deliveries(cb_svc)
        assert (notice.status, notice.attempts, notice.last_status) == ("sent", 3, 204)
        assert len(receiver.requests) == 3
    finally:
        receiver.close()
    last = receiver.requests[-1]
    headers = {k.upper(): v for k, v in last["headers"].items()}
    assert last["path"] == "/notify?from=agency"
    for name in CROSSREF_HEADERS:
        assert headers[name], name
    assert headers["CROSSREF-NOTIFY-ENDPOINT"] == "ojs-press"
    assert headers["CROSSREF-EXTERNAL-ID"] == "cb-batch-1"
    assert headers["CROSSREF-INTERNAL-ID"] == str(submission_id)
    assert headers["CROSSREF-RETRIEVE-URL"] == f"http://localhost/v1/deposits/{submission_id}/log"
    served = parsedate_to_datetime(headers["CROSSREF-SERVICE-DATE"])
    expires = parsedate_to_datetime(headers["CROSSREF-RETRIEVE-URL-EXPIRATION-DATE"])
    assert expires - served == timedelta(days=30)
    signed = "".join(f"{name}:{headers[name]}\n" for name in sorted(CROSSREF_HEADERS))
    expected = "sha256=" + hmac.new(secret.encode(), signed.encode(), hashlib.sha256).hexdigest()
    assert headers["AGENCY-SIGNATURE"] == expected
    assert [r["headers"]["AGENCY-DELIVERY-ID"] for r in receiver.requests] == [str(notice.id)] * 3
    log = cb_client.get(f"/v1/deposits/{submission_id}/log", headers=AUTH)
    assert log.status_code == 200 and b"doi_batch_diagnostic" in log.data


def test_notice_is_dead_after_the_last_attempt_and_visible_to_the_account(cb_svc, cb_client):
    receiver = Receiver([503] * 10)
    try:
        register(cb_client, receiver.url)
        deposit_one(cb_svc, cb_client)
        moment = utcnow()
        for step in range(6):
            cb_svc.callbacks.deliver_due(now=moment + timedelta(days=step))
    finally:
        receiver.close()
    assert len(receiver.requests) == 5
    shown = cb_client.get("/v1/account/callback", headers=AUTH).get_json()["deliveries"]
    assert [(d["status"], d["attempts"], d["last_status"]) for d in shown] == [("dead", 5, 503)]
    assert "HTTP 503" in shown[0]["last_error"]


def test_a_private_address_is_not_called_when_not_allowed_at_send_time(cb_svc, cb_client):
    receiver = Receiver([200])
    try:
        register(cb_client, receiver.url)
        deposit_one(cb_svc, cb_client)
        strict = callbacks.CallbackSender(cb_svc.settings.replace(callback_allow_private=False), cb_svc.db)
        assert strict.deliver_due() == 0
    finally:
        receiver.close()
    assert receiver.requests == []
    [notice] = deliveries(cb_svc)
    assert notice.status == "dead" and "loopback" in notice.last_error


def test_no_callback_registered_means_no_notice(cb_svc, cb_client):
    deposit_one(cb_svc, cb_client)
    assert deliveries(cb_svc) == []


def test_query_result_and_combined_diagnostic_notices(cb_svc, cb_client):
    receiver = Receiver([])
    try:
        register(cb_client, receiver.url)
        lines = cb_svc.settings.query_sync_lines + 1
        text = "".join(f"1234-5679|Journal|Smith|1|1|{n}|2024|full_text|k{n}|\n" for n in range(lines))
        job = cb_client.post("/v1/queries", data=text, headers=basic_headers("alice", "alice-password", "text/plain"))
        assert job.status_code == 202
        submission_id = deposit_one(cb_svc, cb_client, "cb-batch-2")
        assert cb_client.get(f"/v1/deposits/{submission_id}/combined", headers=AUTH).status_code == 409
        cb_svc.mddb.run()
        assert cb_svc.callbacks.deliver_due() == 3
    finally:
        receiver.close()
    retrieve = {r["headers"]["CROSSREF-RETRIEVE-URL"] for r in receiver.requests}
    assert retrieve == {f"http://localhost/v1/queries/{job.get_json()['submission_id']}/result",
                        f"http://localhost/v1/deposits/{submission_id}/log",
                        f"http://localhost/v1/deposits/{submission_id}/combined"}
    assert {n.event for n in deliveries(cb_svc)} == {"query_result", "deposit_log", "combined_diagnostic"}
    combined = cb_client.get(f"/v1/deposits/{submission_id}/combined", headers=AUTH)
    assert combined.status_code == 200 and combined.mimetype == "application/xml"


def test_a_refused_deposit_is_notified_too(cb_svc, cb_client):
    register(cb_client, "http://127.0.0.1:9/")
    response = cb_client.post("/v1/deposits", data=b"<doi_batch><broken", headers=basic_headers("alice", "alice-password"))
    assert response.status_code == 400
    [notice] = deliveries(cb_svc)
    assert notice.event == "deposit_log"
    assert json.loads(notice.headers)["CROSSREF-RETRIEVE-URL"].endswith(f"/{response.get_json()['submission_id']}/log")


def test_one_notice_per_event_key(cb_svc, cb_client):
    register(cb_client, "http://127.0.0.1:9/")
    with cb_svc.db.transaction() as session:
        first = callbacks.enqueue_callback(session, cb_svc.settings, account_id=1, event="deposit_log", key="k-1",
                                           internal_id=1, external_id=None, retrieve_path="/v1/deposits/1/log")
        again = callbacks.enqueue_callback(session, cb_svc.settings, account_id=1, event="deposit_log", key="k-1",
                                           internal_id=1, external_id=None, retrieve_path="/v1/deposits/1/log")
    assert first is not None and again is None and len(deliveries(cb_svc)) == 1


def test_operators_list_and_send_from_the_command_line(cb_svc, cb_client, monkeypatch, capsys):
    from agency import cli

    receiver = Receiver([500])
    try:
        register(cb_client, receiver.url)
        deposit_one(cb_svc, cb_client)
        monkeypatch.setattr(cli, "build_agency", lambda _settings: cb_svc)
        assert cli.main(["callbacks", "send"]) == 0
        assert cli.main(["callbacks", "list"]) == 0
    finally:
        receiver.close()
    out = capsys.readouterr().out
    assert "delivered 0 notification callback(s)" in out
    assert "pending attempts=1" in out and "last: HTTP 500" in out and receiver.url in out
