"""The plain deposit API: ``/v1/deposits`` with HTTP Basic auth and JSON answers."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, send_file, url_for

from agency.web import submissions as subs
from agency.deposit.intake import IntakeError
from agency.models import Submission
from agency.deposit.validation import Verdict
from agency.web.common import (AUTH_REQUIRED, agency, base_url, basic_auth_registrant, json_error, owned_submission,
                               list_limit, refusal_response)

bp = Blueprint("deposits_api", __name__, url_prefix="/v1/deposits")

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
        body["error"] = verdict.summary
        response = jsonify(body)
        response.status_code = refusal_status(verdict)
        return response
    wait = _wait_seconds(svc.settings.max_wait_seconds)
    kept = None
    if wait:
        submission = subs.wait_until_finished(svc, submission.id, wait)
        kept = svc.finished_results(submission.id) if submission.is_finished else None
    return _submission_response(submission, created=True, kept=kept)


def _wait_seconds(maximum: int) -> float:
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
    with agency().db.sessions() as session:
        found = subs.list_own(session, registrant.id, request.args.get("doi_batch_id"),
                              request.args.get("file_name"), kind="deposit",
                              limit=list_limit())
    return jsonify({"submissions": [subs.summary(s, base_url()) for s in found]})


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
