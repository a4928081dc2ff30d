"""Piped queries over HTTP: ``/v1/queries`` (JSON API), ``/servlet/query`` and the servlet's query uploads.

Small texts (at most ``query_sync_lines`` lines) are answered in the response
as ``text/plain`` answer lines; larger files become jobs (202 with a status
URL), answered by the worker, mailed to the account and downloadable.
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
from agency.models.submissions import FAILED
from agency.query.piped_format import QueryTextError, read_query_text
from agency.query.jobs import (
    API_QUERY, DOI_QUERY, METADATA_QUERY, QUERY_FILE, QUERY_KIND, Answered, counts_of, result_attachment_name,
)
from agency.web import servlet
from agency.web.common import (AUTH_REQUIRED, agency, base_url, basic_auth_registrant, check_credentials, json_error,
                               list_limit, owned_submission, refusal_response)

bp = Blueprint("queries", __name__)

TEXT_TYPES = {"text/plain", "text/csv", "application/octet-stream", ""}


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
    if submission.failure_reason:
        body["failure" if submission.status == FAILED else "retrying"] = {
            "reason": submission.failure_reason, "attempts": submission.attempts}
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
    else:
        return json_error(415, f"Content type {request.mimetype!r} is not accepted: send text/plain "
                               "(UTF-8), or multipart/form-data with a 'file' part.")
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
    with agency().db.sessions() as session:
        found = subs.list_own(session, registrant.id, file_name=request.args.get("file_name"), kind=QUERY_KIND,
                              limit=list_limit())
        return jsonify({"queries": [query_summary(s, session) for s in found]})


@bp.get("/v1/queries/<int:submission_id>")
def show(submission_id: int) -> Response:
    submission, error = _owned(submission_id)
    return error or jsonify(query_summary(submission))


@bp.get("/v1/queries/<int:submission_id>/result")
def result(submission_id: int) -> Response:
    submission, error = _owned(submission_id)
    if error:
        return error
    if submission.status == FAILED:
        return json_error(409, f"Query job {submission_id} failed: {submission.failure_reason} "
                               "The operator can retry it, or upload the file again.")
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
    """``usr``, ``pwd``, ``format=piped``, ``qdata``: answered in the same piped format."""
    registrant = check_credentials(request.values.get("usr"), request.values.get("pwd"))
    if registrant is None:
        return _plain(401, "Login failed: usr/pwd missing or wrong.")
    fmt = (request.values.get("format") or "piped").lower()
    if fmt != "piped":
        return _plain(400, f"format={fmt} is not supported here; use format=piped.")
    qdata = request.values.get("qdata")
    if not qdata:
        return _plain(400, "No query: give the query lines in qdata (URL-encoded, separated by %0A).")
    if "\ufffd" in qdata:
        return _plain(400, "qdata is not ASCII or UTF-8 (URL-encode the UTF-8 bytes of the text).")
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
        uploads = servlet.uploaded_files("fname", "mdFile")
        if len(uploads) > 1:
            return servlet.failure(400, servlet.several_files_message("fname", uploads))
        upload = uploads[0] if uploads else None
        if upload is None:
            return servlet.failure(400, "No file: send the query file as multipart/form-data in the part "
                                        "'fname' (or 'mdFile').")
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
    if not submission.is_finished or submission.status == FAILED:
        return Response(subs.log_document(svc, submission), mimetype="text/xml")
    return result_file_response(submission)


servlet.OPERATION_HANDLERS[METADATA_QUERY] = _upload_handler(METADATA_QUERY)
servlet.OPERATION_HANDLERS[DOI_QUERY] = _upload_handler(DOI_QUERY)
servlet.KIND_DOWNLOADS[QUERY_KIND] = download
