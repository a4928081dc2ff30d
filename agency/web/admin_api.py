"""Administration over HTTP for registrants: their audit trail and transfers (``/v1/audit``, ``/v1/transfers``)."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, Response, jsonify, request

from agency.admin.audit import events
from agency.web.common import AUTH_REQUIRED, agency, basic_auth_registrant, json_error, list_limit

bp = Blueprint("admin_api", __name__, url_prefix="/v1")


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
