"""One log line per request, and the operator's endpoints: /healthz, /readyz, /metrics."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Blueprint, Response, g, request

from agency.operations.logs import redact_query

bp = Blueprint("operations", __name__)
requests_log = logging.getLogger("agency.requests")
sign_in_log = logging.getLogger("agency.sign_in")
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@bp.before_app_request
def _start() -> None:
    g.started = time.perf_counter()
    offered = request.headers.get("X-Request-Id", "")
    g.request_id = offered if REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex[:16]


def logged_path() -> str:
    """The path and query string as logged: credential values replaced."""
    query = redact_query(request.query_string.decode("latin-1"))
    return f"{request.path}?{query}" if query else request.path


@bp.after_app_request
def _log(response: Response) -> Response:
    started = g.get("started")
    elapsed_ms = (time.perf_counter() - started) * 1000 if started is not None else 0.0
    request_id = g.get("request_id", "-")
    account = g.get("account") or "-"
    response.headers["X-Request-Id"] = request_id
    path = logged_path()
    requests_log.info("%s %s %s %.1fms id=%s account=%s", request.method, path, response.status_code, elapsed_ms,
                      request_id, account,
                      extra={"fields": {"method": request.method, "path": path, "status": response.status_code,
                                        "ms": round(elapsed_ms, 1), "request_id": request_id, "account": account,
                                        "address": request.remote_addr}})
    return response


def note_sign_in(login: str | None, succeeded: bool) -> None:
    """Remember who signed in for the request line; log (and count) a failed sign-in with login and address."""
    if succeeded:
        g.account = login
        return
    address = request.remote_addr or "-"
    sign_in_log.warning("failed sign-in: login=%r address=%s %s %s", login, address, request.method, request.path,
                        extra={"fields": {"login": login, "address": address, "path": request.path,
                                          "request_id": g.get("request_id")}})
