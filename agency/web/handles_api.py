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

import json
import logging

from flask import Blueprint, Response, request
from sqlalchemy.exc import SQLAlchemyError

from agency.handles import resolver, rest_writes
from agency.handles.editing import EditError
from agency.handles.values import ValueFormatError
from agency.web.common import agency

log = logging.getLogger(__name__)

bp = Blueprint("handles_api", __name__, url_prefix="/api/handles")
prefixes_bp = Blueprint("prefixes_api", __name__, url_prefix="/api/prefixes")
MAX_WRITE_BODY_BYTES = 1024 * 1024


def _respond(result: resolver.HandleAnswer) -> Response:
    indent = 2 if "pretty" in request.args else None
    body = json.dumps(result.body, ensure_ascii=False, indent=indent)
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
    wait = svc.handle_rest_limiter.retry_after(address)
    if wait:
        response = _refuse(rest_writes.AUTHENTICATION_FAILED, "Too many failed authentications from this "
                           "address; try again later.", 429, handle)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    try:
        credentials = rest_writes.parse_basic_user(auth.username, auth.password or "")
        with svc.db.transaction() as session:
            if not rest_writes.authenticate_key(session, credentials):
                svc.handle_rest_limiter.failed(address)
                return _refuse(rest_writes.AUTHENTICATION_FAILED, "Authentication failed.", handle=handle)
            svc.handle_rest_limiter.succeeded(address)
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


@bp.put("/<path:handle>", merge_slashes=False)
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


@bp.delete("/<path:handle>", merge_slashes=False)
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
