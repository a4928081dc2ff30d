"""Piped queries over HTTP: ``/v1/queries`` (JSON API), ``/servlet/query`` and the servlet's query uploads.

Small texts (at most ``query_sync_lines`` lines) are answered in the response
as ``text/plain`` answer lines; larger files become jobs (202 with a status
URL), answered by the worker, mailed to the account and downloadable.

XML ``query_batch`` documents (Crossref's preferred query format; see
``agency.query.xml_format``) are taken by all three: ``/v1/queries`` with an
XML content type, ``/servlet/query`` with XML in ``qdata``, and the servlet's
``doQueryUpload``. A batch is bounded (``AGENCY_QUERY_XML_MAX_QUERIES``) and
answered at once with a ``crossref_result`` document.
"""

from __future__ import annotations

from contextlib import nullcontext

from flask import Blueprint, Response, jsonify, request, send_file, url_for
from sqlalchemy.orm import Session

from agency.web import submissions as subs
from agency.accounts import Registrant
from agency.deposit.batch_files import QUERY_RESULT_FILE
from agency.deposit.intake import IntakeError
from agency.models import Submission
from agency.query.piped_format import QueryTextError, read_query_text
from agency.query.xml_format import looks_like_xml
from agency.query.jobs import (
    API_QUERY, DOI_QUERY, METADATA_QUERY, QUERY_FILE, QUERY_KIND, Answered, counts_of, result_attachment_name,
)
from agency.web import openapi, servlet
from agency.web.common import (AUTH_REQUIRED, agency, base_url, basic_auth_registrant, check_credentials, json_error,
                               list_limit, owned_submission, paged_listing, refusal_response)

bp = Blueprint("queries", __name__)

_ID = openapi.path_param("submission_id", {"type": "integer"}, "the query job id")
_TAGS = ["Queries"]
_COUNT_HEADERS = {"X-Query-Lines": openapi.header("lines answered", "integer")}
OPENAPI_SCHEMAS = {
    "QueryJob": {
        "type": "object", "required": ["submission_id", "status", "links"],
        "properties": {"submission_id": {"type": "integer"}, "kind": {"type": "string"},
                       "operation": {"type": ["string", "null"]}, "status": {"type": "string"},
                       "file_name": {"type": ["string", "null"]}, "received_at": {"type": "string"},
                       "completed_at": {"type": ["string", "null"]}, "lines_done": {"type": ["integer", "null"]},
                       "links": {"type": "object"}, "counts": {"type": "object"}},
    },
    "QueryPage": {
        "type": "object", "required": ["queries", "next_cursor"],
        "properties": {"queries": {"type": "array", "items": openapi.ref("QueryJob")},
                       "next_cursor": {"type": ["string", "null"]}},
    },
}
_SERVLET_QUERY = openapi.operation(
    "Crossref-compatible piped query (answers in the piped format, plain-text errors)", tags=["Crossref servlets"],
    basic_auth=False,
    parameters=[openapi.query_param("usr"), openapi.query_param("pwd"),
                openapi.query_param("format", {"type": "string", "enum": ["piped"]}),
                openapi.query_param("qdata", description="query lines, URL-encoded, separated by %0A")],
    responses={str(status): openapi.content_response(text, "text/plain")
               for status, text in ((200, "Answer lines"), (400, "Bad query"), (401, "Login failed"),
                                    (413, "Too many lines for one request"))})
OPENAPI_PATHS = {
    "/v1/queries": {
        "post": openapi.operation(
            "Piped query: small texts answered at once, larger ones become a job", tags=_TAGS,
            body=openapi.request_body("text/plain", "multipart/form-data"),
            parameters=[openapi.query_param("file_name")],
            responses={"200": openapi.content_response("Answer lines (piped format)", "text/plain"),
                       "202": openapi.json_response("A job; follow Location", openapi.ref("QueryJob")),
                       **openapi.errors(400, 401, 413, 415, 429)}),
        "get": openapi.operation(
            "List the account's query jobs, newest first", tags=_TAGS,
            parameters=[openapi.query_param("file_name"),
                        openapi.query_param("limit", {"type": "integer"}, "page size, 1..1000"),
                        openapi.query_param("cursor", description="next_cursor of the previous page")],
            responses={"200": openapi.json_response("One page", openapi.ref("QueryPage")),
                       **openapi.errors(400, 401)}),
    },
    "/v1/queries/{submission_id}": {"get": openapi.operation(
        "A query job's status", tags=_TAGS, parameters=[_ID],
        responses={"200": openapi.json_response("The job", openapi.ref("QueryJob")), **openapi.errors(401, 404)})},
    "/v1/queries/{submission_id}/result": {"get": openapi.operation(
        "A finished job's answer lines", tags=_TAGS, parameters=[_ID],
        responses={"200": openapi.content_response("Answer lines", "text/plain"), **openapi.errors(401, 404, 409)})},
    "/servlet/query": {"get": _SERVLET_QUERY, "post": {**_SERVLET_QUERY, "parameters": [], "requestBody":
                       openapi.request_body("application/x-www-form-urlencoded", schema={
                           "type": "object", "properties": {n: {"type": "string"}
                                                            for n in ("usr", "pwd", "format", "qdata")}})}},
}

TEXT_TYPES = {"text/plain", "text/csv", "application/octet-stream", ""}
XML_TYPES = {"application/xml", "text/xml"}


def _read_bounded(stream, limit: int) -> bytes:
    """At most ``limit`` + 1 bytes: enough to tell a batch that is too large, never more."""
    return stream.read(limit + 1)


def _batch_response(data: bytes, render_error) -> Response:
    """An XML query batch answered as a ``crossref_result``, or its refusal rendered by ``render_error``."""
    try:
        document, counts = agency().queries.answer_batch(data)
    except QueryTextError as exc:
        return refusal_response(exc, render_error)
    response = Response(document, mimetype="application/xml")
    for name, value in counts.items():
        response.headers[f"X-Query-{name.title()}"] = str(value)
    return response


def _answer_response(answered: Answered) -> Response:
    response = Response(answered.text, mimetype="text/plain")
    response.charset = "utf-8"
    for name, value in answered.counts.as_dict().items():
        response.headers[f"X-Query-{name.replace('_', '-').title()}"] = str(value)
    return response


def query_summary(submission: Submission, session: Session | None = None) -> dict:
    """The job as JSON; with its counts once finished (read in ``session`` when given)."""
    body = {
        "submission_id": submission.id, "kind": submission.kind, "operation": submission.operation,
        "status": submission.status, "file_name": submission.file_name,
        "received_at": submission.received_at.isoformat(),
        "completed_at": submission.completed_at.isoformat() if submission.completed_at else None,
        "lines_done": submission.records_done,
        "links": subs.links(base_url(), submission),
    }
    if submission.is_finished:
        with nullcontext(session) if session is not None else agency().db.sessions() as reading:
            body["counts"] = counts_of(reading, submission.id).as_dict()
    return body


def _error_response(exc: QueryTextError | IntakeError) -> Response:
    return refusal_response(exc, json_error)


# -- /v1/queries ------------------------------------------------------------------------

@bp.post("/v1/queries")
def create() -> Response:
    registrant = basic_auth_registrant()
    if registrant is None:
        return json_error(401, AUTH_REQUIRED)
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            return json_error(400, "The multipart body has no part named 'file'.")
        source, file_name = upload.stream, upload.filename or QUERY_FILE
    elif request.mimetype in TEXT_TYPES:
        source, file_name = request.stream, request.args.get("file_name", QUERY_FILE)
    elif request.mimetype in XML_TYPES:
        return _batch_response(_read_bounded(request.stream, agency().settings.query_xml_max_bytes), json_error)
    else:
        return json_error(415, f"Content type {request.mimetype!r} is not accepted: send text/plain "
                               "(UTF-8), an XML query_batch (application/xml), or multipart/form-data with a "
                               "'file' part.")
    try:
        received = agency().queries.receive(registrant, source, file_name, operation=API_QUERY)
    except (QueryTextError, IntakeError) as exc:
        return _error_response(exc)
    if isinstance(received, Answered):
        return _answer_response(received)
    response = jsonify(query_summary(received))
    response.status_code = 202
    response.headers["Location"] = url_for("queries.show", submission_id=received.id)
    return response


def _owned(submission_id: int) -> tuple[Submission | None, Response | None]:
    return owned_submission(submission_id, QUERY_KIND, "query job")


@bp.get("/v1/queries")
def index() -> Response:
    registrant = basic_auth_registrant()
    if registrant is None:
        return json_error(401, AUTH_REQUIRED)
    try:
        with agency().db.sessions() as session:
            page = subs.list_page(session, registrant.id, list_limit(), request.args.get("cursor"),
                                  file_name=request.args.get("file_name"), kind=QUERY_KIND)
            return paged_listing("queries", page, lambda s: query_summary(s, session))
    except subs.BadCursor as exc:
        return json_error(400, str(exc), code="invalid_cursor")


@bp.get("/v1/queries/<int:submission_id>")
def show(submission_id: int) -> Response:
    submission, error = _owned(submission_id)
    return error or jsonify(query_summary(submission))


@bp.get("/v1/queries/<int:submission_id>/result")
def result(submission_id: int) -> Response:
    submission, error = _owned(submission_id)
    if error:
        return error
    if not submission.is_finished:
        response = json_error(409, f"Query job {submission_id} is {submission.status}; its result is not "
                                   "ready yet.", status_url=url_for("queries.show", submission_id=submission_id))
        response.headers["Retry-After"] = "5"
        return response
    return result_file_response(submission)


def result_file_response(submission: Submission) -> Response:
    path = subs.submission_file(agency(), submission, QUERY_RESULT_FILE)
    response = send_file(path, mimetype="text/plain", download_name=result_attachment_name(submission))
    response.charset = "utf-8"
    return response


# -- Crossref-compatible -----------------------------------------------------------------

def _plain(status: int, message: str) -> Response:
    response = Response(message.rstrip("\n") + "\n", status=status, mimetype="text/plain")
    response.charset = "utf-8"
    return response


@bp.route("/servlet/query", methods=["GET", "POST"])
def servlet_query() -> Response:
    """``usr``, ``pwd``, ``qdata``: piped lines answered in the piped format (``format=piped``), or an
    XML ``query_batch`` answered as a ``crossref_result`` (``format=xsd_xml``, the default for XML)."""
    registrant = check_credentials(request.values.get("usr"), request.values.get("pwd"))
    if registrant is None:
        return _plain(401, "Login failed: usr/pwd missing or wrong.")
    qdata = request.values.get("qdata")
    if not qdata:
        return _plain(400, "No query: give the query lines in qdata (URL-encoded, separated by %0A).")
    if "\ufffd" in qdata:
        return _plain(400, "qdata is not ASCII or UTF-8 (URL-encode the UTF-8 bytes of the text).")
    is_xml = looks_like_xml(qdata.encode("utf-8"))
    fmt = (request.values.get("format") or ("xsd_xml" if is_xml else "piped")).lower()
    if is_xml:
        if fmt != "xsd_xml":
            return _plain(400, f"format={fmt} is not supported for XML queries here; use format=xsd_xml.")
        return _batch_response(qdata.encode("utf-8"), _plain)
    if fmt != "piped":
        return _plain(400, f"format={fmt} is not supported here; use format=piped.")
    settings = agency().settings
    try:
        lines = read_query_text(qdata.encode("utf-8"), settings.query_max_lines,
                                settings.query_max_line_chars)
    except QueryTextError as exc:
        return _plain(exc.status, exc.message)
    if len(lines) > settings.query_sync_lines:
        return _plain(413, f"{len(lines)} lines in one request; at most {settings.query_sync_lines} are answered "
                           "at once. Upload larger files to /servlet/deposit with operation=doQueryUpload.")
    return _answer_response(agency().queries.answer_now(lines))


def _upload_handler(operation: str):
    def handle(registrant: Registrant) -> Response:
        upload = request.files.get("fname") or request.files.get("mdFile")
        if upload is None:
            return servlet.failure(400, "No file: send the query file as multipart/form-data in the part "
                                        "'fname' (or 'mdFile').")
        head = upload.stream.read(64)
        if operation == METADATA_QUERY and looks_like_xml(head):
            limit = agency().settings.query_xml_max_bytes
            return _batch_response(head + _read_bounded(upload.stream, max(0, limit - len(head))), servlet.failure)
        upload.stream.seek(0)
        try:
            submission = agency().queries.receive(registrant, upload.stream, upload.filename or QUERY_FILE,
                                                  operation=operation, always_job=True)
        except (QueryTextError, IntakeError) as exc:
            return refusal_response(exc, servlet.failure)
        return servlet.page("SUCCESS", 200, submission=submission)

    return handle


def download(submission: Submission, kind: str) -> Response:
    """``/servlet/submissionDownload`` for a query job: the result file, or the query file."""
    svc = agency()
    if kind == "contents":
        return send_file(subs.submission_file(svc, submission, QUERY_FILE), mimetype="text/plain")
    if not submission.is_finished:
        return Response(subs.log_document(svc, submission), mimetype="text/xml")
    return result_file_response(submission)


servlet.OPERATION_HANDLERS[METADATA_QUERY] = _upload_handler(METADATA_QUERY)
servlet.OPERATION_HANDLERS[DOI_QUERY] = _upload_handler(DOI_QUERY)
servlet.KIND_DOWNLOADS[QUERY_KIND] = download
