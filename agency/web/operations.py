"""One log line per request, and the operator's endpoints: /healthz, /readyz, /metrics."""

from __future__ import annotations

import logging
import os
import re
import time

from flask import Blueprint, Response, jsonify, request

from agency.operations import metrics
from agency.operations.logs import redact_query
from agency.operations.readiness import readiness

bp = Blueprint("operations", __name__)
OPENAPI_EXCLUDED = {
    "GET /readyz": "operators' readiness probe (plain text), not part of the registrants' API",
    "GET /metrics": "Prometheus exposition format for monitoring, not part of the registrants' API",
}
requests_log = logging.getLogger("agency.requests")
sign_in_log = logging.getLogger("agency.sign_in")
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@bp.before_app_request
def _start() -> None:
    # Kept in the WSGI environ, read through one request object: the hooks run on every request,
    # the resolver's included, where each proxy look-up counts.
    environ = request.environ
    environ["agency.started"] = time.perf_counter()
    offered = environ.get("HTTP_X_REQUEST_ID", "")
    environ["agency.request_id"] = offered if REQUEST_ID.fullmatch(offered) else os.urandom(8).hex()


def logged_path(current=None) -> str:
    """The path and query string as logged: credential values replaced."""
    current = current or request._get_current_object()
    query = redact_query(current.query_string.decode("latin-1"))
    return f"{current.path}?{query}" if query else current.path


@bp.after_app_request
def _log(response: Response) -> Response:
    current = request._get_current_object()
    environ = current.environ
    started = environ.get("agency.started")
    elapsed_ms = (time.perf_counter() - started) * 1000 if started is not None else 0.0
    request_id = environ.get("agency.request_id", "-")
    account = environ.get("agency.account") or "-"
    response.headers["X-Request-Id"] = request_id
    if not requests_log.isEnabledFor(logging.INFO):
        return response
    path = logged_path(current)
    requests_log.info("%s %s %s %.1fms id=%s account=%s", current.method, path, response.status_code, elapsed_ms,
                      request_id, account,
                      extra={"fields": {"method": current.method, "path": path, "status": response.status_code,
                                        "ms": round(elapsed_ms, 1), "request_id": request_id, "account": account,
                                        "address": current.remote_addr}})
    return response


def note_sign_in(login: str | None, succeeded: bool) -> None:
    """Remember who signed in for the request line; log (and count) a failed sign-in with login and address."""
    if succeeded:
        request.environ["agency.account"] = login
        return
    address = request.remote_addr or "-"
    metrics.FAILED_SIGN_INS.inc()
    sign_in_log.warning("failed sign-in: login=%r address=%s %s %s", login, address, request.method, request.path,
                        extra={"fields": {"login": login, "address": address, "path": request.path,
                                          "request_id": request.environ.get("agency.request_id")}})


@bp.get("/readyz")
def ready() -> Response:
    """Ready to serve: the database answers, the batch folder is writable, the worker and scheduler
    asked for in this process run. 503 with the same report when one is not."""
    from agency.web.common import agency

    report = readiness(agency())
    response = jsonify(report)
    response.status_code = 200 if report["ready"] else 503
    return response


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    from agency.web.common import agency

    return Response(metrics.exposition(agency().db), content_type=metrics.CONTENT_TYPE)
