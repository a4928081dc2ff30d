"""The Handle.Net REST API: ``GET /api/handles/{handle}`` as Handle.Net servers answer it, and its writes.

Clients written for Handle.Net (pyhandle, the B2HANDLE family, curl scripts)
read DOI records and prefix records (``0.NA/<prefix>``) here unchanged:
``responseCode`` 1/2/100/102/200/301 with the HTTP statuses that API pairs
with them, ``type=`` and ``index=`` filters, ``pretty`` for indented JSON.

Writes (``PUT``/``DELETE /api/handles/{handle}``, ``GET /api/handles?prefix=``)
authenticate as Handle.Net does (HTTP Basic, user ``300%3A0.NA%2F10.5555``,
password the secret key) and are accepted over HTTPS only, unless
``AGENCY_HANDLE_REST_INSECURE_WRITES=1``. ``GET /api/prefixes`` lists the
prefixes served here.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timezone

from flask import Blueprint, Response, request
from werkzeug.routing import PathConverter
from sqlalchemy.exc import SQLAlchemyError

from agency.handles import resolver, rest_writes
from agency.handles.editing import EditError
from agency.handles.values import ValueFormatError
from agency.sign_in import TooManyFailures
from agency.web import openapi
from agency.web.common import agency, http_date, not_modified

log = logging.getLogger(__name__)

bp = Blueprint("handles_api", __name__, url_prefix="/api/handles")


class HandlePathConverter(PathConverter):
    """Werkzeug's path, line breaks included: a handle with a control character gets this API's
    answer (invalid handle), not the framework's bare 404."""

    regex = r"[^/][\s\S]*?"
    part_isolating = False


bp.record_once(lambda state: state.app.url_map.converters.setdefault("handlepath", HandlePathConverter))
prefixes_bp = Blueprint("prefixes_api", __name__, url_prefix="/api/prefixes")
MAX_WRITE_BODY_BYTES = 1024 * 1024

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
_WRITE_ANSWERS = {str(status): openapi.json_response(text, openapi.ref("HandleRecord"))
                  for status, text in ((200, "Done (responseCode 1)"),
                                       (201, "Created (responseCode 1)"),
                                       (400, "Invalid handle or value, no such values, or a prefix not served "
                                             "here (responseCode 102, 200, 202, 301)"),
                                       (401, "Authenticate with HTTP Basic (responseCode 402)"),
                                       (403, "Not allowed, authentication failed, or plain HTTP without "
                                             "AGENCY_HANDLE_REST_INSECURE_WRITES (responseCode 400, 402)"),
                                       (404, "No such handle (responseCode 100)"),
                                       (409, "The handle or value exists (responseCode 101, 201)"),
                                       (413, "The body is over 1 MiB"),
                                       (429, "Too many failed authentications from this address"),
                                       (500, "The store could not be written (responseCode 2)"))}
_HANDLE_PATH = openapi.path_param("handle", description="prefix/suffix; the slash may stay unencoded")
_INDEX = openapi.query_param("index", {"type": "integer"}, "only the value at this index (repeatable)")
_LISTING = [openapi.query_param("prefix", description="list this prefix's handles (authenticated, as Handle.Net)"),
            openapi.query_param("page", {"type": "integer", "minimum": 0}, "page number, from 0"),
            openapi.query_param("pageSize", {"type": "integer", "minimum": 1}, "handles per page")]
OPENAPI_PATHS = {
    "/api/handles": {"get": openapi.operation(
        "Lists a prefix's handles (?prefix=, authenticated), else tells how to ask for a handle", tags=_TAGS,
        parameters=_LISTING, responses=_WRITE_ANSWERS)},
    "/api/handles/": {"get": openapi.operation(
        "Lists a prefix's handles (?prefix=, authenticated), else tells how to ask for a handle", tags=_TAGS,
        parameters=_LISTING, responses=_WRITE_ANSWERS)},
    "/api/handles/{handle}": {
        "get": openapi.operation(
            "A handle's values as Handle.Net's REST API gives them (DOIs, and prefix records 0.NA/{prefix})",
            tags=_TAGS, basic_auth=False,
            parameters=[_HANDLE_PATH, openapi.query_param("type", description="only values of this type (repeatable)"),
                        _INDEX, openapi.query_param("pretty", description="indented JSON")],
            responses=_HANDLE_ANSWERS),
        "put": openapi.operation(
            "Creates or replaces a handle's values (all, or those at ?index=), as Handle.Net's REST API does; "
            "HTTP Basic with user index:handle of a secret key (300%3A0.NA%2F10.5555) and the key",
            tags=_TAGS, parameters=[_HANDLE_PATH, _INDEX,
                                    openapi.query_param("overwrite", {"type": "boolean"}, "false: 409 when it exists"),
                                    openapi.query_param("mintNewSuffix", {"type": "boolean"},
                                                        "true: a new suffix under the given prefix")],
            body=openapi.request_body("application/json", schema={"type": "object"}), responses=_WRITE_ANSWERS),
        "delete": openapi.operation(
            "Deletes a handle, or its values at ?index=; HTTP Basic as for PUT", tags=_TAGS,
            parameters=[_HANDLE_PATH, _INDEX], responses=_WRITE_ANSWERS),
    },
    "/api/prefixes": {"get": openapi.operation("The prefixes this service holds", tags=_TAGS, basic_auth=False,
                                               responses={"200": _WRITE_ANSWERS["200"]})},
    "/api/prefixes/": {"get": openapi.operation("The prefixes this service holds", tags=_TAGS, basic_auth=False,
                                                responses={"200": _WRITE_ANSWERS["200"]})},
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
    if "prefix" in request.args:
        return _list_handles()
    return _respond(resolver.answer(resolver.INVALID_HANDLE, message=(
        "Give a handle after /api/handles/, e.g. /api/handles/10.5555/abc123 or /api/handles/0.NA/10.5555.")))


@bp.get("/<handlepath:handle>", merge_slashes=False)
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


# ---------------------------------------------------------------------------
# Writes

def _refuse(code: int, message: str, http_status: int | None = None, handle: str | None = None) -> Response:
    result = rest_writes.write_answer(code, handle, message)
    if http_status:
        result = resolver.HandleAnswer(result.body, http_status)
    response = _respond(result)
    if result.http_status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="handle"'
    return response


def _with_writer(handle: str | None, work) -> Response:
    """Authenticate the caller's handle key, then run ``work(writer)`` in one transaction."""
    svc = agency()
    if not request.is_secure and not svc.settings.handle_rest_insecure_writes:
        return _refuse(rest_writes.ERROR, "Writes are accepted over HTTPS only.", 403, handle)
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username:
        return _refuse(rest_writes.AUTHENTICATION_NEEDED, "Authenticate with HTTP Basic: user index:handle "
                       "of your secret key (e.g. 300%3A0.NA%2F10.5555), password the secret key.", handle=handle)
    address = request.remote_addr or "?"
    try:
        credentials = rest_writes.parse_basic_user(auth.username, auth.password or "")
        key_name = str(credentials.key)  # index:handle, as the protocol server counts it
        try:
            svc.handle_key_guard.check(key_name, address)
        except TooManyFailures as exc:
            response = _refuse(rest_writes.AUTHENTICATION_FAILED, "Too many failed authentications for this key or "
                               f"from this address; try again in {exc.retry_after} s.", 429, handle)
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        with svc.db.transaction() as session:
            if not rest_writes.authenticate_key(session, credentials):
                svc.handle_key_guard.failed(key_name, address)
                return _refuse(rest_writes.AUTHENTICATION_FAILED, "Authentication failed.", handle=handle)
            svc.handle_key_guard.succeeded(key_name, address)
            from agency.services import handle_audit

            result = work(rest_writes.RestWriter(session, credentials.key, handle_audit))
            if result.body.get("responseCode") != rest_writes.SUCCESS:
                raise rest_writes.RequestRefused(result)  # roll back whatever was written
        return _respond(result)
    except rest_writes.RequestRefused as exc:
        return _respond(exc.result)
    except EditError as exc:
        return _respond(rest_writes.edit_error_answer(handle or "", exc))
    except SQLAlchemyError:
        log.exception("handle write %r failed", (handle or "")[:200])
        return _refuse(rest_writes.ERROR, "The handle store could not be written; try again shortly.", 500, handle)


def _indexes() -> list[int]:
    return resolver.parse_indexes(request.args.getlist("index"))


@bp.put("/<handlepath:handle>", merge_slashes=False)
def put(handle: str) -> Response:
    if (request.content_length or 0) > MAX_WRITE_BODY_BYTES:
        return _refuse(rest_writes.INVALID_VALUE, f"The body is over {MAX_WRITE_BODY_BYTES} bytes.", 413, handle)
    try:
        indexes = _indexes()
        body = json.loads(request.get_data(cache=False)[:MAX_WRITE_BODY_BYTES + 1] or b"null")
        values = rest_writes.values_from_body(body)
    except (ValueError, ValueFormatError) as exc:
        return _refuse(rest_writes.INVALID_VALUE, str(exc)[:500], 400, handle)
    overwrite = request.args.get("overwrite", "true").lower() != "false"
    mint = request.args.get("mintNewSuffix", "false").lower() == "true"
    return _with_writer(handle, lambda writer: writer.put(handle, values, indexes=indexes, overwrite=overwrite,
                                                          mint=mint))


@bp.delete("/<handlepath:handle>", merge_slashes=False)
def remove(handle: str) -> Response:
    try:
        indexes = _indexes()
    except ValueError as exc:
        return _refuse(rest_writes.ERROR, str(exc), 400, handle)
    return _with_writer(handle, lambda writer: writer.delete(handle, indexes))


def _list_handles() -> Response:
    try:
        page = int(request.args["page"]) if "page" in request.args else None
        size = int(request.args["pageSize"]) if "pageSize" in request.args else None
        if (page is not None and page < 0) or (size is not None and size < 1):
            raise ValueError
    except ValueError:
        return _refuse(rest_writes.ERROR, "page is 0 or more, pageSize 1 or more.", 400)
    prefix = request.args.get("prefix", "")
    return _with_writer(None, lambda writer: writer.list_handles(prefix, page, size))


@prefixes_bp.get("")
@prefixes_bp.get("/")
def prefixes() -> Response:
    svc = agency()
    with svc.db.sessions() as session:
        served = rest_writes.served_prefixes(session)
    return _respond(resolver.HandleAnswer({"responseCode": 1, "prefixes": served}, 200))
