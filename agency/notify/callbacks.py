"""Notification callbacks: the request Crossref's notification callback service makes, from a leased outbox.

An account registers a notify-url and a notify-endpoint name. When one of its
results is ready (a deposit's log, a query job's result, a combined diagnostic),
``enqueue_callback`` writes a notice in the same transaction, so a notice exists
exactly when the result does. ``CallbackSender`` POSTs it with Crossref's headers
(CROSSREF-NOTIFY-ENDPOINT, -EXTERNAL-ID, -INTERNAL-ID, -RETRIEVE-URL,
-SERVICE-DATE, -RETRIEVE-URL-EXPIRATION-DATE) so existing receivers work
unchanged, plus ``AGENCY-SIGNATURE`` so a receiver can check the sender:

    AGENCY-SIGNATURE: sha256=<hex HMAC-SHA256 of the canonical text, keyed with the account's secret>

where the canonical text is each CROSSREF-* header as ``NAME:value`` followed by
a line feed, in name order (``signed_text``). A 2xx answer marks the notice sent
(exactly once: never sent again); anything else, a timeout or a refused
connection is retried with backoff and the notice is dead after
``AGENCY_CALLBACK_MAX_ATTEMPTS``, kept with its last error for the account to see.

Receivers are other people's servers: only http(s), no redirects followed, a
bounded timeout and a bounded read of the answer; addresses that resolve to
loopback, private, link-local or reserved networks are refused (at registration
and again before each attempt) unless ``AGENCY_CALLBACK_ALLOW_PRIVATE=1``.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import secrets
import socket
import uuid
from datetime import datetime, timedelta
from email.utils import format_datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from agency.config import Settings
from agency.db import Database, conflict_insert
from agency.models import CallbackDelivery, CallbackTarget
from agency.models.outbox import SENT
from agency.models.types import utcnow
from agency.notify.outbox import DeliveryFailure, LeasedOutbox, RetryPolicy

log = logging.getLogger(__name__)

DEPOSIT_LOG, QUERY_RESULT, COMBINED_DIAGNOSTIC = "deposit_log", "query_result", "combined_diagnostic"
SIGNATURE_HEADER = "AGENCY-SIGNATURE"
DELIVERY_HEADER = "AGENCY-DELIVERY-ID"
MAX_URL_CHARS = 2048
MAX_ENDPOINT_CHARS = 255


class CallbackUrlError(ValueError):
    """A callback URL or endpoint name that cannot be used; the message says why."""


# -- what may be called -----------------------------------------------------------------
def _refused_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def check_address(host: str, port: int, allow_private: bool) -> None:
    """Raise CallbackUrlError when ``host`` resolves to nothing or to a network callbacks may not reach."""
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise CallbackUrlError(f"the host {host!r} cannot be resolved: {exc}") from None
    refused = sorted({info[4][0] for info in infos if _refused_address(info[4][0])})
    if refused:
        raise CallbackUrlError(f"the host {host!r} resolves to {', '.join(refused)}: loopback, private, link-local "
                               "and reserved addresses are not called back")


def check_callback(url: str, endpoint: str, allow_private: bool) -> tuple[str, str]:
    """The URL and endpoint name, checked (raises CallbackUrlError naming the problem)."""
    if not isinstance(url, str) or not isinstance(endpoint, str):
        raise CallbackUrlError('give {"url": "https://…", "endpoint": "a name"} as strings')
    url, endpoint = url.strip(), endpoint.strip()
    if len(url) > MAX_URL_CHARS:
        raise CallbackUrlError(f"the URL is longer than {MAX_URL_CHARS} characters")
    if not endpoint or len(endpoint) > MAX_ENDPOINT_CHARS or not endpoint.isprintable():
        raise CallbackUrlError(f"the endpoint is a name of 1 to {MAX_ENDPOINT_CHARS} printable characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise CallbackUrlError(f"the URL cannot be read: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise CallbackUrlError(f"the URL must be http:// or https://, not {parts.scheme or '(none)'}:")
    if not parts.hostname or parts.username or parts.password:
        raise CallbackUrlError("the URL needs a host, and no user name or password in it")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise CallbackUrlError("the URL contains white space or control characters")
    check_address(parts.hostname, port or (443 if parts.scheme == "https" else 80), allow_private)
    return url, endpoint


# -- the account's target ------------------------------------------------------------------
def set_target(session: Session, account_id: int, url: str, endpoint: str) -> tuple[CallbackTarget, dict | None]:
    """Register (or replace) the account's callback; returns it and what it was before (None if new).

    The signing secret is kept when only the URL or name changes, so receivers
    need not be reconfigured; a new registration gets a new one.
    """
    target = session.get(CallbackTarget, account_id)
    before = describe_target(target) if target else None
    if target is None:
        target = CallbackTarget(account_id=account_id, url=url, endpoint=endpoint, secret=secrets.token_hex(32),
                                created_at=utcnow())
        session.add(target)
    else:
        target.url, target.endpoint = url, endpoint
    session.flush()
    return target, before


def remove_target(session: Session, account_id: int) -> dict | None:
    """Remove the account's callback; returns what it was (None when there was none). Pending notices stay."""
    target = session.get(CallbackTarget, account_id)
    if target is None:
        return None
    before = describe_target(target)
    session.delete(target)
    return before


def describe_target(target: CallbackTarget) -> dict:
    """The target without its secret (for answers and the audit trail)."""
    return {"url": target.url, "endpoint": target.endpoint}


# -- notices --------------------------------------------------------------------------------
def signed_text(headers: dict[str, str]) -> str:
    """What the signature covers: each CROSSREF-* header as ``NAME:value\\n``, in name order."""
    return "".join(f"{name}:{headers[name]}\n" for name in sorted(headers) if name.startswith("CROSSREF-"))


def signature(secret: str, headers: dict[str, str]) -> str:
    digest = hmac.new(secret.encode(), signed_text(headers).encode("utf-8"), hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def enqueue_callback(session: Session, settings: Settings, *, account_id: int, event: str, key: str,
                     internal_id: int | str, external_id: str | None, retrieve_path: str,
                     now: datetime | None = None) -> CallbackDelivery | None:
    """Write the notice of a ready result in the caller's transaction; None without a target or when ``key`` exists."""
    target = session.get(CallbackTarget, account_id)
    if target is None:
        return None
    now = now or utcnow()
    headers = {
        "CROSSREF-NOTIFY-ENDPOINT": target.endpoint,
        "CROSSREF-INTERNAL-ID": str(internal_id),
        "CROSSREF-RETRIEVE-URL": settings.base_url.rstrip("/") + retrieve_path,
        "CROSSREF-SERVICE-DATE": format_datetime(now, usegmt=True),
        "CROSSREF-RETRIEVE-URL-EXPIRATION-DATE": format_datetime(
            now + timedelta(days=settings.callback_retrieve_days), usegmt=True),
    }
    if external_id:
        headers["CROSSREF-EXTERNAL-ID"] = " ".join(external_id.split())[:255]
    headers[SIGNATURE_HEADER] = signature(target.secret, headers)
    insert = conflict_insert(session.get_bind().dialect.name)
    new_id = session.scalar(
        insert(CallbackDelivery).values(key=key[:255], account_id=account_id, event=event, url=target.url,
                                        headers=json.dumps(headers, ensure_ascii=False), created_at=now,
                                        status="pending", attempts=0, next_attempt_at=now)
        .on_conflict_do_nothing(index_elements=[CallbackDelivery.key]).returning(CallbackDelivery.id))
    return session.get(CallbackDelivery, new_id) if new_id is not None else None


def deposit_log_ready(settings: Settings):
    """A deposit runner's on_completed (and intake's refusal) hook: tell the account its log is ready."""
    def notify(session: Session, submission, *_ignored) -> None:
        enqueue_callback(session, settings, account_id=submission.account_id, event=DEPOSIT_LOG,
                         key=f"deposit-log-{submission.id}", internal_id=submission.id,
                         external_id=submission.doi_batch_id, retrieve_path=f"/v1/deposits/{submission.id}/log")
    return notify


def recent_deliveries(session: Session, account_id: int, limit: int = 20) -> list[dict]:
    """The account's latest notices with their state, newest first (the account sees failures and dead ones)."""
    rows = session.scalars(select(CallbackDelivery).where(CallbackDelivery.account_id == account_id)
                           .order_by(CallbackDelivery.id.desc()).limit(limit))
    return [{"id": r.id, "event": r.event, "url": r.url, "status": r.status, "attempts": r.attempts,
             "created_at": r.created_at.isoformat(), "sent_at": r.sent_at.isoformat() if r.sent_at else None,
             "next_attempt_at": r.next_attempt_at.isoformat() if r.status == "pending" else None,
             "last_status": r.last_status, "last_error": r.last_error,
             "internal_id": json.loads(r.headers).get("CROSSREF-INTERNAL-ID")} for r in rows]


def describe_delivery(row: CallbackDelivery) -> str:
    """One notice as an operator reads it in `agency callbacks list`."""
    headers = json.loads(row.headers)
    return (f"#{row.id} {row.status} attempts={row.attempts} account={row.account_id} {row.event} "
            f"internal-id={headers.get('CROSSREF-INTERNAL-ID')} -> {row.url}"
            + (f"\n    last: HTTP {row.last_status}" if row.last_status else "")
            + (f"\n    error: {row.last_error}" if row.last_error else ""))


def list_deliveries(db: Database, statuses: list[str], limit: int = 100) -> list[CallbackDelivery]:
    with db.sessions() as session:
        return list(session.scalars(select(CallbackDelivery).where(CallbackDelivery.status.in_(statuses))
                                   .order_by(CallbackDelivery.id).limit(limit)))


# -- delivery -------------------------------------------------------------------------------
def callback_policy(settings: Settings) -> RetryPolicy:
    lease = int(settings.callback_timeout_seconds * 3) + 60  # outlasts one request: connect, send, read
    return RetryPolicy(settings.callback_max_attempts, settings.callback_retry_base_seconds,
                       settings.callback_retry_max_seconds, lease, 200)


def post_notice(url: str, headers: dict[str, str], settings: Settings) -> int:
    """POST one notice (empty body); returns the HTTP status. Raises DeliveryFailure when no answer came."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        check_address(parts.hostname or "", port, settings.callback_allow_private)
    except CallbackUrlError as exc:
        raise DeliveryFailure(f"not called: {exc}", permanent=True) from None
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, port, timeout=settings.callback_timeout_seconds)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.putrequest("POST", path)
        for name, value in headers.items():
            connection.putheader(name, value.encode("utf-8"))  # Crossref: values are UTF-8, not URI-encoded
        connection.putheader("Content-Length", "0")
        connection.putheader("User-Agent", "agency-callback/1")
        connection.endheaders()
        response = connection.getresponse()
        response.read(settings.callback_max_response_bytes)  # bounded: the rest is dropped with the connection
        return response.status
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryFailure(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
    finally:
        connection.close()


class CallbackSender(LeasedOutbox):
    """Delivers due notices, one request at a time; any number of senders may run at once."""

    model = CallbackDelivery

    def __init__(self, settings: Settings, db: Database) -> None:
        super().__init__(db, callback_policy(settings))
        self.settings = settings

    def deliver_due(self, now: datetime | None = None) -> int:
        """Try every notice due now (or at ``now``) once; returns how many were answered 2xx."""
        clock = (lambda: now) if now is not None else utcnow
        owner = f"{self.name}:{uuid.uuid4().hex[:8]}"
        delivered, tried = 0, set()
        while batch := [i for i in self._due_ids(clock()) if i not in tried]:
            for row_id in batch:
                tried.add(row_id)
                row = self._claim(row_id, clock(), owner)
                if row is not None:
                    delivered += self._deliver(row, clock)
        return delivered

    def _deliver(self, row: CallbackDelivery, clock) -> int:
        headers = {**json.loads(row.headers), DELIVERY_HEADER: str(row.id)}
        status = self._attempt(row, clock, lambda: post_notice(row.url, headers, self.settings))
        if status is None:
            return 0
        self._note_status(row, status)
        if not 200 <= status < 300:
            self._record_failure(row, DeliveryFailure(f"the receiver answered HTTP {status}"), clock())
            return 0
        with self.db.transaction() as session:
            session.execute(self._fenced(row).values(status=SENT, sent_at=clock(), attempts=row.attempts + 1,
                                                     last_error=None, claimed_by=None, claimed_until=None))
        return 1

    def _note_status(self, row: CallbackDelivery, status: int) -> None:
        with self.db.transaction() as session:
            session.execute(self._fenced(row).values(last_status=status))
