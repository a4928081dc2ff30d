"""What every blueprint needs: the running agency and who is asking."""

from __future__ import annotations

from typing import Callable

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
    svc = agency()
    address = request.remote_addr or "unknown"
    svc.sign_in.check(login, address)
    with svc.db.sessions() as session:
        registrant = authenticate(session, svc.passwords, login, password)
    if registrant is None:
        svc.sign_in.failed(login, address)
    else:
        svc.sign_in.succeeded(login, address)
    return registrant


def basic_auth_registrant() -> Registrant | None:
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return None
    return check_credentials(auth.username, auth.password)


AUTH_REQUIRED = "Login and password required (HTTP Basic), or they are wrong."
LIST_DEFAULT, LIST_MAX = 100, 1000


def list_limit() -> int:
    """How many submissions a listing returns: ``?limit=N``, kept within 1..LIST_MAX."""
    return max(1, min(request.args.get("limit", LIST_DEFAULT, type=int), LIST_MAX))


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


def json_error(status: int, message: str, **extra) -> Response:
    body = {"error": message, "status": status}
    body.update(extra)
    response = jsonify(body)
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
