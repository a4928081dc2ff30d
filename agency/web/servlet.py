"""Crossref-compatible HTTP interface: ``/servlet/deposit`` and ``/servlet/submissionDownload``.

Existing clients look for HTTP 200 and a page titled SUCCESS with the sentence
"Your batch submission was successfully received."; that is kept word for word.
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request, send_file

from agency.web import openapi, submissions as subs
from agency.deposit.intake import IntakeError
from agency.models import Submission
from agency.web.common import agency, base_url, check_credentials, refusal_response
from agency.web.deposits_api import refusal_status

bp = Blueprint("servlet", __name__, url_prefix="/servlet")

_TAGS = ["Crossref servlets"]
_PAGE = "An HTML page titled SUCCESS or FAILURE, as Crossref's"
_FORM_FIELDS = ("operation", "login_id", "login_passwd", "usr", "pwd")
OPENAPI_PATHS = {
    "/servlet/deposit": {"post": openapi.operation(
        "Crossref-compatible upload: doMDUpload (deposits), doQueryUpload and doDOIQueryUpload (query files)",
        tags=_TAGS, basic_auth=False,
        body=openapi.request_body("multipart/form-data", schema={
            "type": "object", "properties": {**{f: {"type": "string"} for f in _FORM_FIELDS},
                                             "fname": {"type": "string", "contentMediaType": "application/xml"},
                                             "mdFile": {"type": "string", "contentMediaType": "application/xml"}}}),
        responses={str(status): openapi.content_response(f"{_PAGE}: {text}", "text/html")
                   for status, text in ((200, "received"), (400, "bad request or not well-formed"),
                                        (401, "login failed"), (413, "too large"), (422, "invalid batch"),
                                        (429, "too many pending"))})},
    "/servlet/submissionDownload": {method: openapi.operation(
        "Crossref-compatible log (type=result) or file (type=contents) of a submission", tags=_TAGS, basic_auth=False,
        parameters=[openapi.query_param(n) for n in ("usr", "pwd", "doi_batch_id", "file_name")]
        + [openapi.query_param("type", {"type": "string", "enum": ["result", "contents"]})],
        responses={"200": openapi.content_response("The XML log, the file, or a query job's answer lines",
                                                   "text/xml", "application/xml", "text/plain"),
                   **{str(status): openapi.content_response(f"{_PAGE}: {text}", "text/html")
                      for status, text in ((400, "missing parameters"), (401, "login failed"),
                                           (404, "no such file"))}}) for method in ("get", "post")},
}

DEPOSIT_OPERATIONS = ("doMDUpload",)
# Other operations (query uploads) are registered by their own modules.
OPERATION_HANDLERS: dict = {}
# submissionDownload for submissions of another kind (kind -> handler(submission, type)).
KIND_DOWNLOADS: dict = {}


def _field(*names: str) -> str | None:
    for name in names:
        value = request.values.get(name)
        if value is not None:
            return value
    return None


def page(title: str, status: int, reason: str = "", issues=(), submission: Submission | None = None) -> Response:
    followed = subs.links(base_url(), submission) if submission is not None else {}
    html = render_template(
        "pages/servlet_result.html.j2", title=title, reason=reason, issues=[str(i) for i in issues],
        submission=submission, status_url=followed.get("self", ""),
        log_url=followed.get("log", followed.get("result", "")),
    )
    response = Response(html, status=status, mimetype="text/html")
    if submission is not None:
        response.headers["X-Submission-Id"] = str(submission.id)
    return response


def failure(status: int, reason: str, **kwargs) -> Response:
    return page("FAILURE", status, reason, **kwargs)


@bp.route("/deposit", methods=["POST"])
def deposit() -> Response:
    registrant = check_credentials(_field("login_id", "usr"), _field("login_passwd", "pwd"))
    if registrant is None:
        return failure(401, "Login failed: login_id/login_passwd (or usr/pwd) missing or wrong.")
    operation = _field("operation") or "doMDUpload"
    if operation in OPERATION_HANDLERS:
        return OPERATION_HANDLERS[operation](registrant)
    if operation not in DEPOSIT_OPERATIONS:
        return failure(400, f"Unknown operation {operation!r}. Supported operations: "
                            + ", ".join((*DEPOSIT_OPERATIONS, *OPERATION_HANDLERS)) + ".")
    upload = request.files.get("fname") or request.files.get("mdFile")
    if upload is None:
        return failure(400, "No file: send the batch as multipart/form-data in the part 'fname' (or 'mdFile').")
    svc = agency()
    try:
        submission, verdict = svc.intake.receive(registrant, upload.stream, upload.filename or "batch.xml",
                                                 operation=operation)
    except IntakeError as exc:
        return refusal_response(exc, failure)
    if not verdict.accepted:
        return failure(refusal_status(verdict), verdict.summary + ".", issues=verdict.issues,
                       submission=submission)
    return page("SUCCESS", 200, submission=submission)


@bp.route("/submissionDownload", methods=["GET", "POST"])
def submission_download() -> Response:
    registrant = check_credentials(_field("usr", "login_id"), _field("pwd", "login_passwd"))
    if registrant is None:
        return failure(401, "Login failed: usr/pwd missing or wrong.")
    file_name, batch_id = _field("file_name"), _field("doi_batch_id")
    if not file_name and not batch_id:
        return failure(400, "Give file_name or doi_batch_id.")
    kind = (_field("type") or "result").lower()
    if kind not in ("result", "contents"):
        return failure(400, "type must be 'result' or 'contents'.")
    svc = agency()
    with svc.db.sessions() as session:
        found = subs.list_own(session, registrant.id, doi_batch_id=batch_id, file_name=file_name, limit=1)
    submission = found[0] if found else None
    if submission is not None and submission.kind in KIND_DOWNLOADS:
        return KIND_DOWNLOADS[submission.kind](submission, kind)
    if kind == "contents":
        if submission is None:
            return failure(404, "unknown_submission: no such file for this account.")
        return send_file(subs.submission_file(svc, submission), mimetype="application/xml")
    return Response(subs.log_document(svc, submission), mimetype="text/xml")
