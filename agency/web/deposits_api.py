"""The plain deposit API: ``/v1/deposits`` with HTTP Basic auth and JSON answers."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, send_file, url_for

from agency.web import openapi, submissions as subs
from agency.deposit.batch_files import COMBINED_FILE
from agency.deposit.intake import IntakeError
from agency.models import Submission
from agency.deposit.validation import Verdict
from agency.web.common import (AUTH_REQUIRED, agency, base_url, basic_auth_registrant, error_body, json_error, owned_submission,
                               list_limit, paged_listing, refusal_response)

bp = Blueprint("deposits_api", __name__, url_prefix="/v1/deposits")

_ID = openapi.path_param("submission_id", {"type": "integer"}, "the submission id")
_TAGS = ["Deposits"]
OPENAPI_SCHEMAS = {
    "Links": {"type": "object", "additionalProperties": {"type": "string"}},
    "Submission": {
        "type": "object", "required": ["submission_id", "status", "kind", "links"],
        "properties": {
            "submission_id": {"type": "integer"},
            "status": {"type": "string", "enum": ["queued", "processing", "paused", "completed", "refused", "failed"]},
            "kind": {"type": "string"}, "file_name": {"type": ["string", "null"]},
            "doi_batch_id": {"type": ["string", "null"]}, "received_at": {"type": "string"},
            "completed_at": {"type": ["string", "null"]}, "counts": {"type": "object"},
            "index_status": {"type": ["string", "null"]}, "links": openapi.ref("Links"),
            "refusal": {"type": "object"},
            "records": {"type": "array", "items": {
                "type": "object", "required": ["seq", "doi", "status", "msg"],
                "properties": {"seq": {"type": "integer"}, "doi": {"type": ["string", "null"]},
                               "status": {"type": "string"}, "msg": {"type": ["string", "null"]}}}},
            "error": openapi.ERROR_SCHEMA["properties"]["error"],
        },
    },
    "SubmissionPage": {
        "type": "object", "required": ["submissions", "next_cursor"],
        "properties": {"submissions": {"type": "array", "items": openapi.ref("Submission")},
                       "next_cursor": {"type": ["string", "null"],
                                       "description": "pass as ?cursor= for the next page; null on the last"}},
    },
}
_REFUSED_OR_ERROR = {"anyOf": [openapi.ref("Submission"), openapi.ref("Error")]}
LISTING_PARAMETERS = [
    openapi.query_param("limit", {"type": "integer"}, "page size, 1..1000 (default 100)"),
    openapi.query_param("cursor", description="next_cursor of the previous page"),
]
OPENAPI_PATHS = {
    "/v1/deposits": {
        "post": openapi.operation(
            "Deposit a doi_batch", tags=_TAGS,
            description="Body application/xml, or multipart/form-data with a 'file' part. ?wait=SECONDS answers "
                        "with the finished result when it comes in time.",
            parameters=[openapi.query_param("wait", {"type": "number"}, "seconds to wait for the result"),
                        openapi.query_param("file_name", description="the name to keep for the file")],
            body=openapi.request_body("application/xml", "text/xml", "multipart/form-data"),
            responses={"200": openapi.json_response("Finished within ?wait", openapi.ref("Submission")),
                       "202": openapi.json_response("Accepted; follow Location", openapi.ref("Submission"),
                                                    headers={"Location": openapi.header("status URL")}),
                       "400": openapi.json_response("Not well-formed or hostile XML (a refused submission, "
                                                    "kept), or no file at all (an error)", _REFUSED_OR_ERROR),
                       "422": openapi.json_response("Schema errors or a format not taken (refused, kept)",
                                                    _REFUSED_OR_ERROR),
                       **openapi.errors(401, 413, 415, 429)}),
        "get": openapi.operation(
            "List the account's deposits, newest first", tags=_TAGS,
            parameters=[openapi.query_param("doi_batch_id"), openapi.query_param("file_name"), *LISTING_PARAMETERS],
            responses={"200": openapi.json_response("One page", openapi.ref("SubmissionPage")),
                       **openapi.errors(400, 401)}),
    },
    "/v1/deposits/{submission_id}": {"get": openapi.operation(
        "A deposit's status, with every record's result once finished", tags=_TAGS, parameters=[_ID],
        responses={"200": openapi.json_response("The submission", openapi.ref("Submission")),
                   **openapi.errors(401, 404)})},
    "/v1/deposits/{submission_id}/log": {"get": openapi.operation(
        "The doi_batch_diagnostic log (status-only while queued or processing)", tags=_TAGS, parameters=[_ID],
        responses={"200": openapi.content_response("The XML log", "application/xml"),
                   **openapi.errors(401, 404)})},
    "/v1/deposits/{submission_id}/combined": {"get": openapi.operation(
        "The combined diagnostic (deposit and metadata load), once the metadata load has read the batch",
        tags=_TAGS, parameters=[_ID],
        responses={"200": openapi.content_response("The combined diagnostic", "application/xml"),
                   **openapi.errors(401, 404, 409)})},
    "/v1/deposits/{submission_id}/file": {"get": openapi.operation(
        "The file as received", tags=_TAGS, parameters=[_ID],
        responses={"200": openapi.content_response("The batch", "application/xml"), **openapi.errors(401, 404)})},
}

XML_TYPES = {"application/xml", "text/xml"}
REFUSAL_STATUS = {"malformed": 400, "hostile": 400, "invalid": 422, "unsupported": 422, "over_limits": 413}


def refusal_status(verdict: Verdict) -> int:
    return REFUSAL_STATUS.get(verdict.kind or "", 422)


@bp.post("")
def create() -> Response:
    registrant = basic_auth_registrant()
    if registrant is None:
        return json_error(401, AUTH_REQUIRED)
    mimetype = request.mimetype
    if mimetype in XML_TYPES:
        source, file_name = request.stream, request.args.get("file_name", "batch.xml")
    elif mimetype == "multipart/form-data":
        uploads = request.files.getlist("file")
        if len(uploads) > 1:
            return json_error(400, f"Several files in one upload ({len(uploads)} parts named 'file'); nothing "
                                   "was processed. Send one file per request.")
        upload = uploads[0] if uploads else None
        if upload is None:
            return json_error(400, "The multipart body has no part named 'file'.")
        source, file_name = upload.stream, upload.filename or "batch.xml"
    else:
        return json_error(415, f"Content type {mimetype or '(none)'!r} is not accepted: send "
                               "application/xml, or multipart/form-data with a 'file' part.")
    svc = agency()
    try:
        submission, verdict = svc.intake.receive(registrant, source, file_name, operation="api")
    except IntakeError as exc:
        return refusal_response(exc, json_error)
    if not verdict.accepted:
        body = subs.summary(submission, base_url())
        body.update(error_body(refusal_status(verdict), verdict.summary, code=f"{verdict.kind or 'invalid'}_batch",
                               details={"errors": body["refusal"]["errors"]}))
        response = jsonify(body)
        response.status_code = refusal_status(verdict)
        return response
    wait = wait_seconds(svc.settings.max_wait_seconds)
    kept = None
    if wait:
        submission = subs.wait_until_finished(svc, submission.id, wait)
        kept = svc.finished_results(submission.id) if submission.is_finished else None
    return _submission_response(submission, created=True, kept=kept)


def wait_seconds(maximum: int) -> float:
    """``?wait=SECONDS``, kept within 0..maximum (0 when absent or not a number)."""
    raw = request.args.get("wait")
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        return 0.0
    return max(0.0, min(value, float(maximum)))


def _submission_response(submission: Submission, created: bool = False, kept: list | None = None) -> Response:
    body = subs.summary(submission, base_url())
    if submission.is_finished:
        with agency().db.sessions() as session:
            body["records"] = subs.record_results(session, submission.id, kept)
    response = jsonify(body)
    location = url_for("deposits_api.show", submission_id=submission.id)
    if created:
        response.status_code = 200 if submission.is_finished else 202
        response.headers["Location"] = location
    return response


def _owned(submission_id: int) -> tuple[Submission | None, Response | None]:
    return owned_submission(submission_id, "deposit", "submission")


@bp.get("")
def index() -> Response:
    registrant = basic_auth_registrant()
    if registrant is None:
        return json_error(401, AUTH_REQUIRED)
    try:
        with agency().db.sessions() as session:
            page = subs.list_page(session, registrant.id, list_limit(), request.args.get("cursor"),
                                  doi_batch_id=request.args.get("doi_batch_id"),
                                  file_name=request.args.get("file_name"), kind="deposit")
    except subs.BadCursor as exc:
        return json_error(400, str(exc), code="invalid_cursor")
    base = base_url()
    return paged_listing("submissions", page, lambda s: subs.summary(s, base))


@bp.get("/<int:submission_id>")
def show(submission_id: int) -> Response:
    submission, error = _owned(submission_id)
    return error or _submission_response(submission)


@bp.get("/<int:submission_id>/log")
def log(submission_id: int) -> Response:
    submission, error = _owned(submission_id)
    if error:
        return error
    return Response(subs.log_document(agency(), submission), mimetype="application/xml")


@bp.get("/<int:submission_id>/file")
def original(submission_id: int) -> Response:
    submission, error = _owned(submission_id)
    if error:
        return error
    return send_file(subs.submission_file(agency(), submission), mimetype="application/xml",
                     download_name=submission.file_name, as_attachment=False)


@bp.get("/<int:submission_id>/combined")
def combined(submission_id: int) -> Response:
    submission, error = _owned(submission_id)
    if error:
        return error
    path = subs.submission_file(agency(), submission, COMBINED_FILE)
    if not path.is_file():
        response = json_error(409, f"Submission {submission_id} has no combined diagnostic yet: the metadata load "
                                   "reads completed batches on a schedule.", code="not_ready")
        response.headers["Retry-After"] = "60"
        return response
    return send_file(path, mimetype="application/xml", download_name=f"submission-{submission_id}-combined.xml")
