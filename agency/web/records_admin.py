"""Keeping records right over HTTP: bulk URL updates, aliases, withdrawn DOIs' tombstones, the depositor report.

``POST /v1/url-updates`` and the servlet's ``doTransferDOIsUpload`` take DOI<TAB>URL
files; ``/v1/aliases`` makes and undoes aliases (and the servlet takes Crossref's
forced-aliasing files with ``subType=cm``); ``/withdrawn/{doi}`` is the page a
withdrawn DOI resolves to; ``/v1/reports/depositor`` streams the account's DOIs.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template, request, send_file, url_for

from agency.admin.aliases import ALIAS_FILE, ALIAS_KIND, AliasError, make_alias, remove_alias
from agency.admin.audit import Actor
from agency.admin.reports import UnknownPrefix, as_csv, as_json, depositor_rows
from agency.admin.withdrawals import tombstone
from agency.admin.url_updates import API_OPERATION, SERVLET_OPERATION, URL_FILE, URL_UPDATE_KIND
from agency.accounts import Registrant
from agency.deposit.batch_files import QUERY_RESULT_FILE
from agency.deposit.intake import IntakeError
from agency.models import Submission
from agency.query.piped_format import QueryTextError
from agency.web import openapi, servlet
from agency.web import submissions as subs
from agency.web.common import (AUTH_REQUIRED, agency, base_url, basic_auth_registrant, json_error, owned_submission,
                               refusal_response, text_upload)
from agency.web.deposits_api import wait_seconds

bp = Blueprint("records_admin", __name__)

_ID = openapi.path_param("submission_id", {"type": "integer"}, "the URL update's submission id")
_TAGS = ["Keeping records right"]
_TEXT = {"200": openapi.content_response("The text", "text/plain")}
OPENAPI_PATHS = {
    "/v1/url-updates": {"post": openapi.operation(
        "Bulk URL updates: UTF-8 DOI<TAB>URL lines; 202 with the submission (200 when ?wait= saw it finish)",
        tags=_TAGS, body=openapi.request_body("text/plain", "multipart/form-data"),
        parameters=[openapi.query_param("wait", {"type": "number"}), openapi.query_param("file_name")],
        responses={"200": openapi.json_response("Finished, with each line's result", {"type": "object"}),
                   "202": openapi.json_response("Queued; follow Location", {"type": "object"}),
                   **openapi.errors(400, 401, 413, 415, 429)})},
    "/v1/url-updates/{submission_id}": {"get": openapi.operation(
        "A URL update's status (and each line's result once finished)", tags=_TAGS, parameters=[_ID],
        responses={"200": openapi.json_response("The submission", {"type": "object"}), **openapi.errors(401, 404)})},
    "/v1/url-updates/{submission_id}/log": {"get": openapi.operation(
        "Its doi_batch_diagnostic log", tags=_TAGS, parameters=[_ID],
        responses={"200": openapi.content_response("The log", "application/xml"), **openapi.errors(401, 404)})},
    "/v1/url-updates/{submission_id}/result": {"get": openapi.operation(
        "LINE<TAB>DOI<TAB>Success|Failure<TAB>message lines", tags=_TAGS, parameters=[_ID],
        responses={**_TEXT, **openapi.errors(401, 404, 409)})},
    "/v1/aliases": {"post": openapi.operation(
        "Make a DOI an alias of another (HS_ALIAS)", tags=_TAGS,
        body=openapi.request_body("application/json", schema={
            "type": "object", "required": ["primary", "alias"],
            "properties": {"primary": {"type": "string"}, "alias": {"type": "string"}}}),
        responses={"201": openapi.json_response("Made", {"type": "object"}), **openapi.errors(400, 401, 404, 409)})},
    "/v1/aliases/{alias}": {"delete": openapi.operation(
        "Undo an alias", tags=_TAGS, parameters=[openapi.path_param("alias", description="the alias DOI")],
        responses={"200": openapi.json_response("Undone", {"type": "object"}), **openapi.errors(401, 404)})},
    "/v1/reports/depositor": {"get": openapi.operation(
        "The account's DOIs under one of its prefixes, streamed (CSV or JSON)", tags=_TAGS,
        parameters=[openapi.query_param("prefix", required=True), openapi.query_param("title"),
                    openapi.query_param("format", {"type": "string", "enum": ["csv", "json"]})],
        responses={"200": openapi.content_response("The report", "text/csv", "application/json"),
                   **openapi.errors(400, 401, 404)})},
}
OPENAPI_EXCLUDED = {"GET /withdrawn/{doi}": "the tombstone page a withdrawn DOI resolves to (HTML)"}


# -- bulk URL updates ------------------------------------------------------------------------

@bp.post("/v1/url-updates")
def create_url_update() -> Response:
    registrant = basic_auth_registrant()
    if registrant is None:
        return json_error(401, AUTH_REQUIRED)
    upload, error = text_upload(URL_FILE, "DOI<TAB>URL lines")
    if error:
        return error
    source, file_name = upload
    svc = agency()
    try:
        submission = svc.url_updates.receive(registrant, source, file_name, operation=API_OPERATION)
    except (QueryTextError, IntakeError) as exc:
        return refusal_response(exc, json_error)
    wait = wait_seconds(svc.settings.max_wait_seconds)
    if wait:
        submission = subs.wait_until_finished(svc, submission.id, wait)
    response = _url_update_response(submission)
    response.status_code = 200 if submission.is_finished else 202
    response.headers["Location"] = url_for("records_admin.show_url_update", submission_id=submission.id)
    return response


def _url_update_response(submission: Submission) -> Response:
    body = subs.summary(submission, base_url())
    if submission.is_finished:
        with agency().db.sessions() as session:
            body["records"] = subs.record_results(session, submission.id)
    return jsonify(body)


def _owned_update(submission_id: int):
    return owned_submission(submission_id, URL_UPDATE_KIND, "URL update")


@bp.get("/v1/url-updates/<int:submission_id>")
def show_url_update(submission_id: int) -> Response:
    submission, error = _owned_update(submission_id)
    return error or _url_update_response(submission)


@bp.get("/v1/url-updates/<int:submission_id>/log")
def url_update_log(submission_id: int) -> Response:
    submission, error = _owned_update(submission_id)
    return error or Response(subs.log_document(agency(), submission), mimetype="application/xml")


@bp.get("/v1/url-updates/<int:submission_id>/result")
def url_update_result(submission_id: int) -> Response:
    submission, error = _owned_update(submission_id)
    if error:
        return error
    if not submission.is_finished:
        response = json_error(409, f"URL update {submission_id} is {submission.status}; its result is not ready.")
        response.headers["Retry-After"] = "5"
        return response
    response = send_file(subs.submission_file(agency(), submission, QUERY_RESULT_FILE), mimetype="text/plain")
    response.charset = "utf-8"
    return response


def _servlet_upload(what: str, default_name: str, receive):
    """A servlet handler for a text file in 'fname' (or 'mdFile'): ``receive(registrant, stream, name)``
    records it and returns its submission; refusals are FAILURE pages."""
    def handle(registrant: Registrant) -> Response:
        upload = request.files.get("fname") or request.files.get("mdFile")
        if upload is None:
            return servlet.failure(400, f"No file: send the {what} as multipart/form-data in the part 'fname' "
                                        "(or 'mdFile').")
        try:
            submission = receive(registrant, upload.stream, upload.filename or default_name)
        except (QueryTextError, IntakeError) as exc:
            return refusal_response(exc, servlet.failure)
        return servlet.page("SUCCESS", 200, submission=submission)

    return handle


def _text_file_download(file_name: str):
    """submissionDownload for a text submission: its file (type=contents) or its XML log."""
    def download(submission: Submission, kind: str) -> Response:
        svc = agency()
        if kind == "contents":
            return send_file(subs.submission_file(svc, submission, file_name), mimetype="text/plain")
        return Response(subs.log_document(svc, submission), mimetype="text/xml")

    return download


servlet.OPERATION_HANDLERS[SERVLET_OPERATION] = _servlet_upload(
    "DOI<TAB>URL file", URL_FILE,
    lambda registrant, stream, name: agency().url_updates.receive(registrant, stream, name, SERVLET_OPERATION))
servlet.KIND_DOWNLOADS[URL_UPDATE_KIND] = _text_file_download(URL_FILE)


# -- aliases -----------------------------------------------------------------------------------

@bp.post("/v1/aliases")
def create_alias() -> Response:
    registrant = basic_auth_registrant()
    if registrant is None:
        return json_error(401, AUTH_REQUIRED)
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("primary"), str) or not isinstance(body.get("alias"), str):
        return json_error(400, 'Send JSON {"primary": DOI, "alias": DOI}.')
    svc = agency()
    try:
        with svc.db.transaction() as session:
            make_alias(session, Actor.account(registrant.login), registrant, body["primary"].strip(),
                       body["alias"].strip(), svc.settings.handle_ttl)
    except AliasError as exc:
        return json_error(exc.status, exc.message)
    response = jsonify({"alias": body["alias"].strip(), "primary": body["primary"].strip()})
    response.status_code = 201
    return response


@bp.delete("/v1/aliases/<path:alias>")
def delete_alias(alias: str) -> Response:
    registrant = basic_auth_registrant()
    if registrant is None:
        return json_error(401, AUTH_REQUIRED)
    try:
        with agency().db.transaction() as session:
            primary = remove_alias(session, Actor.account(registrant.login), registrant, alias)
    except AliasError as exc:
        return json_error(exc.status, exc.message)
    return jsonify({"alias": alias, "was_alias_of": primary})


servlet.SUBTYPE_HANDLERS["cm"] = _servlet_upload(
    "aliasing file", ALIAS_FILE, lambda registrant, stream, name: agency().aliases.receive(registrant, stream, name))
servlet.KIND_DOWNLOADS[ALIAS_KIND] = _text_file_download(ALIAS_FILE)


# -- withdrawn DOIs ----------------------------------------------------------------------------

@bp.get("/withdrawn/<path:doi>")
def withdrawn_page(doi: str) -> Response:
    """The tombstone a withdrawn DOI resolves to: 410 Gone, with the DOI, its title, the reason and the date."""
    with agency().db.sessions() as session:
        tomb = tombstone(session, doi)
    if tomb is None:
        return Response(render_template("pages/doi_not_found.html.j2", heading="Not withdrawn", requested=doi,
                                        message="This DOI is not withdrawn here."), status=404, mimetype="text/html")
    return Response(render_template("pages/doi_withdrawn.html.j2", tomb=tomb), status=410, mimetype="text/html")


# -- the depositor report ----------------------------------------------------------------------

@bp.get("/v1/reports/depositor")
def depositor_report() -> Response:
    """CSV (default, or ``format=csv``) or JSON (``format=json`` or Accept: application/json), streamed."""
    registrant = basic_auth_registrant()
    if registrant is None:
        return json_error(401, AUTH_REQUIRED)
    prefix = (request.args.get("prefix") or "").strip()
    if not prefix:
        return json_error(400, "Give the prefix: /v1/reports/depositor?prefix=10.NNNN")
    title = request.args.get("title")
    limit = agency().settings.report_max_title_chars
    if title is not None and len(title) > limit:
        return json_error(400, f"title= is at most {limit} characters.")
    fmt = request.args.get("format") or ("json" if request.accept_mimetypes.best == "application/json" else "csv")
    if fmt not in ("csv", "json"):
        return json_error(400, "format is csv or json.")
    try:
        rows = depositor_rows(agency().db, registrant, prefix, title)
    except UnknownPrefix:
        return json_error(404, f"No prefix {prefix} for this account.")
    if fmt == "json":
        return Response(as_json(rows, prefix), mimetype="application/json")
    response = Response(as_csv(rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="depositor-{prefix}.csv"'
    return response
