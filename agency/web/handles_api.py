"""The Handle.Net REST API, read side: ``GET /api/handles/{handle}`` as Handle.Net servers answer it.

Clients written for Handle.Net (pyhandle, the B2HANDLE family, curl scripts)
read DOI records and prefix records (``0.NA/<prefix>``) here unchanged:
``responseCode`` 1/2/100/102/200/301 with the HTTP statuses that API pairs
with them, ``type=`` and ``index=`` filters, ``pretty`` for indented JSON.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timezone

from flask import Blueprint, Response, request
from sqlalchemy.exc import SQLAlchemyError

from agency.handles import resolver
from agency.web import openapi
from agency.web.common import agency, http_date, not_modified

log = logging.getLogger(__name__)

bp = Blueprint("handles_api", __name__, url_prefix="/api/handles")

_TAGS = ["Handle.Net REST API"]
OPENAPI_SCHEMAS = {
    "HandleRecord": {
        "type": "object", "required": ["responseCode"],
        "properties": {
            "responseCode": {"type": "integer", "description": "1 success, 2 error, 100 not found, "
                                                               "102 invalid handle, 200 no such values, 301 not here"},
            "handle": {"type": "string"}, "message": {"type": "string"},
            "values": {"type": "array", "items": {
                "type": "object", "required": ["index", "type", "data"],
                "properties": {"index": {"type": "integer"}, "type": {"type": "string"},
                               "data": {"type": "object"}, "ttl": {"type": "integer"},
                               "timestamp": {"type": "string"}}}},
        },
    },
}
_HANDLE_ANSWERS = {str(status): openapi.json_response(text, openapi.ref("HandleRecord"))
                   for status, text in ((200, "The handle's values (responseCode 1 or 200)"),
                                        (400, "Not a handle, a bad index, or a prefix not served here"),
                                        (404, "No such handle (responseCode 100)"),
                                        (500, "The store could not be read (responseCode 2)"))}
_HANDLE_ANSWERS["304"] = {"description": "Not modified (If-None-Match / If-Modified-Since)"}
OPENAPI_PATHS = {
    "/api/handles": {"get": openapi.operation("Tells how to ask for a handle", tags=_TAGS, basic_auth=False,
                                              responses={"400": _HANDLE_ANSWERS["400"]})},
    "/api/handles/": {"get": openapi.operation("Tells how to ask for a handle", tags=_TAGS, basic_auth=False,
                                               responses={"400": _HANDLE_ANSWERS["400"]})},
    "/api/handles/{handle}": {"get": openapi.operation(
        "A handle's values as Handle.Net's REST API gives them (DOIs, and prefix records 0.NA/{prefix})",
        tags=_TAGS, basic_auth=False,
        parameters=[openapi.path_param("handle", description="prefix/suffix; the slash may stay unencoded"),
                    openapi.query_param("type", description="only values of this type (repeatable)"),
                    openapi.query_param("index", {"type": "integer"}, "only the value at this index (repeatable)"),
                    openapi.query_param("pretty", description="indented JSON")],
        responses=_HANDLE_ANSWERS)},
}


def _respond(result: resolver.HandleAnswer) -> Response:
    indent = 2 if "pretty" in request.args else None
    body = json.dumps(result.body, ensure_ascii=False, indent=indent).encode()
    values = result.body.get("values") if result.http_status == 200 else None
    if values:
        etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
        changed = max(datetime.strptime(v["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
                      for v in values)
        response = Response(status=304) if not_modified(etag, changed) else Response(body, mimetype="application/json")
        response.headers["ETag"] = etag
        response.headers["Last-Modified"] = http_date(changed)
        max_age = max(0, min(min(v["ttl"] for v in values), agency().settings.resolve_max_age_seconds))
        response.headers["Cache-Control"] = f"public, max-age={max_age}"
    else:
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
