"""What every blueprint needs: the running agency and who is asking."""

from __future__ import annotations

import email.utils
import functools
from datetime import datetime
from typing import Callable
from urllib.parse import urlencode

from flask import Response, current_app, jsonify, request

from agency.accounts import Registrant, authenticate
from agency.services import Agency


def base_url() -> str:
    """This service's address as the client reached it, for links in answers."""
    return request.host_url.rstrip("/")


def agency() -> Agency:
    return current_app.extensions["agency"]


def check_credentials(login: str | None, password: str | None) -> Registrant | None:
    """The registrant, or None for wrong credentials; raises ``SignInRefused`` (429/503, answered
    by the app's error handler) when this login or address is throttled or hashing is saturated."""
    if not login or password is None:
        return None
    from agency.web.operations import note_sign_in

    svc = agency()
    address = request.remote_addr or "unknown"
    with svc.sign_in.attempt(login, address) as outcome:
        with svc.db.sessions() as session:
            registrant = authenticate(session, svc.passwords, login, password)
        outcome.succeeded = registrant is not None
    note_sign_in(login, registrant is not None)
    return registrant


def basic_auth_registrant() -> Registrant | None:
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return None
    return check_credentials(auth.username, auth.password)


AUTH_REQUIRED = "Login and password required (HTTP Basic), or they are wrong."


def account_required(view: Callable) -> Callable:
    """A view called with the authenticated registrant first; 401 without valid HTTP Basic credentials."""
    @functools.wraps(view)
    def guarded(*args, **kwargs):
        registrant = basic_auth_registrant()
        if registrant is None:
            return json_error(401, AUTH_REQUIRED)
        return view(registrant, *args, **kwargs)
    return guarded
LIST_DEFAULT, LIST_MAX = 100, 1000


def list_limit() -> int:
    """How many submissions a listing returns: ``?limit=N``, kept within 1..LIST_MAX."""
    return max(1, min(request.args.get("limit", LIST_DEFAULT, type=int), LIST_MAX))


def paged_listing(name: str, page, render: Callable) -> Response:
    """A listing page as JSON: ``{name: [...], "next_cursor": ...}`` and a ``Link: rel="next"`` header."""
    response = jsonify({name: [render(item) for item in page.items], "next_cursor": page.next_cursor})
    if page.next_cursor:
        args = {**request.args.to_dict(), "cursor": page.next_cursor}
        response.headers["Link"] = f'<{request.base_url}?{urlencode(args)}>; rel="next"'
    return response


def owned_submission(submission_id: int, kind: str, what: str):
    """(submission, None) for the caller's own submission of this kind, else (None, a 401/404 answer)."""
    from agency.web.submissions import own_submission

    registrant = basic_auth_registrant()
    if registrant is None:
        return None, json_error(401, AUTH_REQUIRED)
    with agency().db.sessions() as session:
        submission = own_submission(session, registrant.id, submission_id, kind=kind)
    if submission is None:
        return None, json_error(404, f"No {what} {submission_id} for this account.")
    return submission, None


ERROR_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    406: "not_acceptable", 409: "not_ready", 413: "too_large", 415: "unsupported_media_type",
    422: "unprocessable", 429: "too_many_pending", 500: "internal_error", 503: "unavailable",
}


def error_body(status: int, message: str, code: str | None = None, details: dict | None = None) -> dict:
    """The one error shape of /v1: ``{"error": {"code", "message", "details"}}``."""
    return {"error": {"code": code or ERROR_CODES.get(status, "error"), "message": message,
                      "details": details or {}}}


def http_date(moment: datetime) -> str:
    return _http_date(int(moment.timestamp()))


@functools.lru_cache(maxsize=4096)
def _http_date(seconds: int) -> str:
    """Formatted once per second of time seen: resolution answers repeat the same few dates."""
    return email.utils.formatdate(seconds, usegmt=True)


def not_modified(etag: str, last_modified: datetime | None) -> bool:
    """Whether a conditional GET may be answered 304 (RFC 9110: If-None-Match decides when present,
    else If-Modified-Since against Last-Modified, to the second)."""
    environ = request.environ
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or etag in tags
    since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if since and last_modified is not None:
        try:
            return int(last_modified.timestamp()) <= int(email.utils.parsedate_to_datetime(since).timestamp())
        except (TypeError, ValueError, OverflowError):
            return False
    return False


def json_error(status: int, message: str, code: str | None = None, **details) -> Response:
    response = jsonify(error_body(status, message, code, details))
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="agency", charset="UTF-8"'
    return response


def refusal_response(exc: Exception, render: Callable[[int, str], Response]) -> Response:
    """An intake refusal (size, pending cap, text limits) rendered as JSON or a page, with Retry-After."""
    response = render(exc.status, exc.message)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


TEXT_UPLOAD_TYPES = {"text/plain", "text/csv", "text/tab-separated-values", "application/octet-stream", ""}


def text_upload(default_name: str, what: str):
    """(stream, file name) of a text file sent as the body (text/plain...) or as a multipart 'file' part,
    else (None, a 400 or 415 answer); ``what`` says in that answer what the text holds."""
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            return None, json_error(400, "The multipart body has no part named 'file'.")
        return (upload.stream, upload.filename or default_name), None
    if request.mimetype in TEXT_UPLOAD_TYPES:
        return (request.stream, request.args.get("file_name", default_name)), None
    return None, json_error(415, f"Content type {request.mimetype!r} is not accepted: send text/plain (UTF-8 "
                                 f"{what}), or multipart/form-data with a 'file' part.")
