"""The Handle.Net REST API, read side: ``GET /api/handles/{handle}`` as Handle.Net servers answer it.

Clients written for Handle.Net (pyhandle, the B2HANDLE family, curl scripts)
read DOI records and prefix records (``0.NA/<prefix>``) here unchanged:
``responseCode`` 1/2/100/102/200/301 with the HTTP statuses that API pairs
with them, ``type=`` and ``index=`` filters, ``pretty`` for indented JSON.
"""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Response, request
from sqlalchemy.exc import SQLAlchemyError

from agency.handles import resolver
from agency.web.common import agency

log = logging.getLogger(__name__)

bp = Blueprint("handles_api", __name__, url_prefix="/api/handles")


def _respond(result: resolver.HandleAnswer) -> Response:
    indent = 2 if "pretty" in request.args else None
    body = json.dumps(result.body, ensure_ascii=False, indent=indent)
    response = Response(body, status=result.http_status, mimetype="application/json")
    response.headers["Access-Control-Allow-Origin"] = "*"  # read-only public data, as Handle.Net serves it
    return response


@bp.get("")
@bp.get("/")
def no_handle() -> Response:
    return _respond(resolver.answer(resolver.INVALID_HANDLE, message=(
        "Give a handle after /api/handles/, e.g. /api/handles/10.5555/abc123 or /api/handles/0.NA/10.5555.")))


@bp.get("/<path:handle>", merge_slashes=False)
def show(handle: str) -> Response:
    problem = (resolver.wsgi_path_problem(request.environ.get("PATH_INFO", ""))
               or resolver.path_problem(handle))
    if problem:
        return _respond(resolver.answer(resolver.INVALID_HANDLE, message=problem))
    try:
        indexes = resolver.parse_indexes(request.args.getlist("index"))
    except ValueError as exc:
        return _respond(resolver.answer(resolver.ERROR, handle, str(exc), http_status=400))
    types = [t for t in request.args.getlist("type") if t]
    svc = agency()
    try:
        with svc.db.sessions() as session:
            result = resolver.handle_record(session, handle, svc.settings.handle_ttl, types, indexes)
    except SQLAlchemyError:
        log.exception("handle record %r could not be read", handle[:200])
        result = resolver.answer(resolver.ERROR, handle, "The handle store could not be read; try again shortly.")
    return _respond(result)
