"""What every blueprint needs: the running agency and who is asking."""

from __future__ import annotations

from flask import Response, current_app, jsonify, request

from agency.accounts import Registrant, authenticate
from agency.services import Agency


def agency() -> Agency:
    return current_app.extensions["agency"]


def check_credentials(login: str | None, password: str | None) -> Registrant | None:
    if not login or password is None:
        return None
    svc = agency()
    with svc.db.sessions() as session:
        return authenticate(session, svc.passwords, login, password)


def basic_auth_registrant() -> Registrant | None:
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return None
    return check_credentials(auth.username, auth.password)


def json_error(status: int, message: str, **extra) -> Response:
    body = {"error": message, "status": status}
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="agency", charset="UTF-8"'
    return response
