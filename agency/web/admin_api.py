"""Administration over HTTP for registrants: their audit trail and transfers (``/v1/audit``, ``/v1/transfers``)."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, Response, jsonify, request, url_for

from agency.admin import transfers
from agency.admin.audit import Actor, events
from agency.admin.transfers import TransferError
from agency.web import openapi
from agency.web.common import AUTH_REQUIRED, agency, basic_auth_registrant, json_error, list_limit

bp = Blueprint("admin_api", __name__, url_prefix="/v1")

_TAGS = ["Administration"]
_TRANSFER_ID = openapi.path_param("transfer_id", {"type": "integer"}, "the transfer id")
_TRANSFER = {"type": "object", "required": ["transfer_id", "status"], "properties": {
    "transfer_id": {"type": "integer"}, "status": {"type": "string", "enum": ["open", "completed", "withdrawn"]},
    "from": {"type": "string"}, "to": {"type": "string"}, "scope": {"type": "string"},
    "scope_value": {"type": ["string", "null"]}, "dois": {"type": "integer"}, "opened_by": {"type": "string"},
    "opened_at": {"type": "string"}, "consents": {"type": "object"}, "closed_at": {"type": ["string", "null"]},
    "closed_by": {"type": ["string", "null"]}}}
_STEP = {"200": openapi.json_response("The transfer now", _TRANSFER), **openapi.errors(401, 403, 404, 409)}
OPENAPI_PATHS = {
    "/v1/audit": {"get": openapi.operation(
        "The audit events about the caller's account, oldest first", tags=_TAGS,
        parameters=[openapi.query_param("since", description="ISO date or time"), openapi.query_param(
            "limit", {"type": "integer"})],
        responses={"200": openapi.json_response("Events", {"type": "object", "properties": {
            "events": {"type": "array", "items": {"type": "object"}}}}), **openapi.errors(400, 401)})},
    "/v1/transfers": {
        "post": openapi.operation(
            "Open a transfer of DOIs, a title's DOIs or a prefix (DOI Handbook 9.1.5)", tags=_TAGS,
            description='JSON {"to": LOGIN, "dois": [...]} or "title": ISSN/ISBN or "prefix": P; "from" when '
                        "the caller receives.",
            body=openapi.request_body("application/json", schema={"type": "object"}),
            responses={"201": openapi.json_response("Opened", _TRANSFER, headers={
                "Location": openapi.header("the transfer")}), **openapi.errors(400, 401, 403, 404, 409, 413)}),
        "get": openapi.operation("The caller's transfers, newest first", tags=_TAGS,
                                 parameters=[openapi.query_param("status"), openapi.query_param(
                                     "limit", {"type": "integer"})],
                                 responses={"200": openapi.json_response("Transfers", {
                                     "type": "object", "properties": {"transfers": {"type": "array",
                                                                                    "items": _TRANSFER}}}),
                                            **openapi.errors(401)})},
    "/v1/transfers/{transfer_id}": {"get": openapi.operation(
        "One of the caller's transfers", tags=_TAGS, parameters=[_TRANSFER_ID],
        responses={"200": openapi.json_response("The transfer", _TRANSFER), **openapi.errors(401, 404)})},
    "/v1/transfers/{transfer_id}/consent": {"post": openapi.operation(
        "The caller's consent, as a party", tags=_TAGS, parameters=[_TRANSFER_ID], responses=_STEP)},
    "/v1/transfers/{transfer_id}/withdraw": {"post": openapi.operation(
        "Call the transfer off, as a party", tags=_TAGS, parameters=[_TRANSFER_ID], responses=_STEP)},
}


def event_json(event) -> dict:
    return {"id": event.id, "at": event.at.isoformat(), "actor": event.actor, "action": event.action,
            "subject": event.subject, "before": event.before, "after": event.after, "reason": event.reason}


@bp.get("/audit")
def audit() -> Response:
    """The events about the caller's own account, oldest first (``?since=ISO``, ``?limit=N``)."""
    registrant = basic_auth_registrant()
    if registrant is None:
        return json_error(401, AUTH_REQUIRED)
    since = None
    if request.args.get("since"):
        try:
            since = datetime.fromisoformat(request.args["since"])
        except ValueError:
            return json_error(400, f"since={request.args['since']!r} is not an ISO date or time")
        since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
    with agency().db.sessions() as session:
        found = [event_json(e) for e in events(session, account_id=registrant.id, since=since, limit=list_limit())]
    return jsonify({"events": found})


def _transfer_error(exc: TransferError) -> Response:
    return json_error(exc.status, str(exc))


@bp.post("/transfers")
def open_transfer() -> Response:
    """``{"to": LOGIN, "dois": [...]}`` (or ``"title"`` / ``"prefix"``; ``"from"`` when the caller receives)."""
    registrant = basic_auth_registrant()
    if registrant is None:
        return json_error(401, AUTH_REQUIRED)
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("to"), str):
        return json_error(400, 'Send JSON {"to": LOGIN, "dois": [...]} (or "title": ISSN/ISBN, or "prefix": P).')
    source = body.get("from", registrant.login)
    if not isinstance(source, str) or registrant.login not in (source, body["to"]):
        return json_error(403, "A registrant opens transfers it is a party of (from or to).")
    svc = agency()
    try:
        with svc.db.transaction() as session:
            done = transfers.open_transfer(session, Actor.account(registrant.login), body["to"], from_login=source,
                                           dois=body.get("dois"), title=body.get("title"), prefix=body.get("prefix"))
    except TransferError as exc:
        return _transfer_error(exc)
    response = jsonify(done.as_json())
    response.status_code = 201
    response.headers["Location"] = url_for("admin_api.show_transfer", transfer_id=done.id)
    return response


def _party_step(step) -> Response:
    """Run a party's step on a transfer (``step(session, registrant)``) in one transaction, answer its state."""
    registrant = basic_auth_registrant()
    if registrant is None:
        return json_error(401, AUTH_REQUIRED)
    try:
        with agency().db.transaction() as session:
            done = step(session, registrant)
    except TransferError as exc:
        return _transfer_error(exc)
    return jsonify(done.as_json())


@bp.post("/transfers/<int(max=2147483647):transfer_id>/consent")
def consent(transfer_id: int) -> Response:
    auto = agency().settings.transfers_auto
    return _party_step(lambda session, registrant: transfers.consent(
        session, Actor.account(registrant.login), transfer_id, registrant.login, auto_complete=auto))


@bp.post("/transfers/<int(max=2147483647):transfer_id>/withdraw")
def withdraw(transfer_id: int) -> Response:
    return _party_step(lambda session, registrant: transfers.withdraw(
        session, Actor.account(registrant.login), transfer_id))


@bp.get("/transfers/<int(max=2147483647):transfer_id>")
def show_transfer(transfer_id: int) -> Response:
    registrant = basic_auth_registrant()
    if registrant is None:
        return json_error(401, AUTH_REQUIRED)
    with agency().db.sessions() as session:
        try:
            found = transfers.view(session, transfer_id)
        except TransferError:
            found = None
    if found is None or registrant.login not in (found.from_login, found.to_login):
        return json_error(404, f"No transfer {transfer_id} for this account.")
    return jsonify(found.as_json())


@bp.get("/transfers")
def list_transfers() -> Response:
    registrant = basic_auth_registrant()
    if registrant is None:
        return json_error(401, AUTH_REQUIRED)
    with agency().db.sessions() as session:
        found = transfers.list_transfers(session, registrant, request.args.get("status"), list_limit())
    return jsonify({"transfers": [t.as_json() for t in found]})
