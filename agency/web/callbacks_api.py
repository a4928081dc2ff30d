"""``/v1/account/callback``: where the account's notification callbacks go, and how the last ones fared."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from agency.admin.accounts import remove_callback, set_callback
from agency.admin.audit import Actor
from agency.models import CallbackTarget
from agency.notify import callbacks
from agency.web import openapi
from agency.accounts import Registrant
from agency.web.common import account_required, agency, json_error

bp = Blueprint("callbacks_api", __name__, url_prefix="/v1/account/callback")

_TAGS = ["Notification callbacks"]
OPENAPI_SCHEMAS = {
    "CallbackRequest": {"type": "object", "required": ["url", "endpoint"],
                        "properties": {"url": {"type": "string", "description": "http(s) URL called back"},
                                       "endpoint": {"type": "string",
                                                    "description": "sent as CROSSREF-NOTIFY-ENDPOINT"}}},
    "Callback": {
        "type": "object", "required": ["callback", "deliveries"],
        "properties": {
            "callback": {"type": ["object", "null"], "properties": {
                "url": {"type": "string"}, "endpoint": {"type": "string"},
                "secret": {"type": "string", "description": "HMAC-SHA256 key of AGENCY-SIGNATURE (PUT answers only)"}}},
            "deliveries": {"type": "array", "items": {"type": "object"},
                           "description": "the latest notices: status pending, sent or dead, attempts, last error"},
        },
    },
}
OPENAPI_PATHS = {"/v1/account/callback": {
    "get": openapi.operation("The account's callback and its latest notices", tags=_TAGS,
                             responses={"200": openapi.json_response("The callback", openapi.ref("Callback")),
                                        **openapi.errors(401)}),
    "put": openapi.operation(
        "Register or replace the callback (Crossref's notify-url and notify-endpoint)", tags=_TAGS,
        description="When a deposit's log, a query job's result or a combined diagnostic is ready, the URL is "
                    "POSTed Crossref's CROSSREF-* headers and AGENCY-SIGNATURE (sha256=HMAC of each CROSSREF-* "
                    "header as NAME:value and a line feed, in name order).",
        body=openapi.request_body("application/json", schema=openapi.ref("CallbackRequest")),
        responses={"200": openapi.json_response("Registered", openapi.ref("Callback")),
                   **openapi.errors(400, 401, 415, 422)}),
    "delete": openapi.operation("Remove the callback (pending notices are still delivered)", tags=_TAGS,
                                responses={"204": {"description": "Removed"}, **openapi.errors(401, 404)}),
}}


def _answer(registrant: Registrant, target: CallbackTarget | None, secret: bool = False) -> Response:
    svc = agency()
    shown = None
    if target is not None:
        shown = callbacks.describe_target(target)
        if secret:
            shown["secret"] = target.secret
    with svc.db.sessions() as session:
        deliveries = callbacks.recent_deliveries(session, registrant.id)
    return jsonify({"callback": shown, "deliveries": deliveries})


@bp.get("")
@account_required
def show(registrant: Registrant) -> Response:
    with agency().db.sessions() as session:
        target = session.get(CallbackTarget, registrant.id)
        if target is not None:
            session.expunge(target)
    return _answer(registrant, target)


@bp.put("")
@account_required
def register(registrant: Registrant) -> Response:
    if request.mimetype != "application/json":
        return json_error(415, 'Send application/json: {"url": "https://…", "endpoint": "a name"}.')
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return json_error(400, 'The body is not a JSON object like {"url": "https://…", "endpoint": "a name"}.')
    svc = agency()
    try:
        with svc.db.transaction() as session:
            target = set_callback(session, Actor.account(registrant.login), registrant.login, body.get("url"),
                                  body.get("endpoint"), svc.settings.callback_allow_private)
            session.flush()
            session.expunge(target)
    except callbacks.CallbackUrlError as exc:
        return json_error(422, f"This callback cannot be used: {exc}.", code="invalid_callback")
    return _answer(registrant, target, secret=True)


@bp.delete("")
@account_required
def remove(registrant: Registrant) -> Response:
    with agency().db.transaction() as session:
        if not remove_callback(session, Actor.account(registrant.login), registrant.login):
            return json_error(404, "This account has no callback registered.")
    return Response(status=204)
