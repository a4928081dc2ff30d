"""Registrant pages under /ui/: sign-in, dashboard, upload, submissions, DOIs, queries, account."""

from __future__ import annotations

import io
import json

from flask import (Blueprint, Response, abort, flash, redirect, render_template, request, send_file,
                   url_for)
from sqlalchemy import func, select, tuple_

from agency.accounts import AccountError, Registrant, authenticate
from agency.admin import transfers
from agency.admin.accounts import MAX_EMAIL_CHARS, change_own_password, remove_callback, set_callback, set_email
from agency.admin.audit import Actor
from agency.admin.url_updates import URL_FILE, URL_UPDATE_KIND
from agency.deposit.batch_files import BATCH_FILE, QUERY_RESULT_FILE
from agency.deposit.intake import IntakeError
from agency.handles import resolver
from agency.handles.doi_syntax import doi_key
from agency.handles.store import handle_values, value_text
from agency.metadata.identifiers import parse_issn
from agency.models import (Account, AuditEvent, CallbackTarget, Handle, MetadataIdentifier, MetadataRecord,
                           RecordResult, Submission, VersionReset)
from agency.models.submissions import COMPLETED, FAILED, PAUSED, PROCESSING, QUEUED, REFUSED
from agency.models.transfers import OPEN
from agency.notify.callbacks import CallbackUrlError, describe_target, recent_deliveries
from agency.query.jobs import QUERY_FILE, QUERY_KIND
from agency.query.piped_format import AMBIGUOUS, MALFORMED, NO_MATCH, REJECTED, QueryTextError, iter_query_lines
from agency.web import submissions as subs
from agency.web.common import agency
from agency.web.ui.forms import hint_for, requested_page, sign_in_page
from agency.web.ui.sessions import REGISTRANT, end_session, protect_forms, signed_in, start_session

bp = Blueprint("ui", __name__, url_prefix="/ui")
bp.before_request(protect_forms)
registrant_page = signed_in(REGISTRANT)

DASHBOARD_ROWS = 20
RECORD_STATUSES = ("Success", "Warning", "Failure")
QUERY_STATUSES = ("found", AMBIGUOUS, NO_MATCH, MALFORMED, REJECTED)
WEB_OPERATION = "web"  # the operation recorded for files uploaded through these pages
# What the upload form takes, each through the intake its API uses: (label, file kept, its media type).
UPLOAD_KINDS = {
    "deposit": ("Deposit or resource-only file (doi_batch or doi_resources XML)", BATCH_FILE, "application/xml"),
    URL_UPDATE_KIND: ("URL update file (DOI<TAB>URL lines)", URL_FILE, "text/plain"),
    QUERY_KIND: ("Query file (piped query lines)", QUERY_FILE, "text/plain"),
}
QUERY_TEXT_CHARS = 200_000
REGISTRANT_PAGE = "a registrant web page (signed-cookie session and CSRF token), not part of the API"
OPENAPI_EXCLUDED = {route: REGISTRANT_PAGE for route in (
    "GET /ui/",
    "GET /ui/account",
    "POST /ui/account",
    "GET /ui/csl/{doi}",
    "GET /ui/dois",
    "GET /ui/dois/{doi}",
    "GET /ui/query",
    "POST /ui/query",
    "GET /ui/sign-in",
    "POST /ui/sign-in",
    "POST /ui/sign-out",
    "GET /ui/submissions/{submission_id}",
    "GET /ui/submissions/{submission_id}/file",
    "GET /ui/submissions/{submission_id}/log.xml",
    "GET /ui/submissions/{submission_id}/result.txt",
    "GET /ui/upload",
    "POST /ui/upload",
)}


# -- signing in and out --------------------------------------------------------------------
@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Response:
    svc = agency()

    def check(login: str, password: str):
        with svc.db.sessions() as db:
            return authenticate(db, svc.passwords, login, password)

    def password_hash(who: Registrant) -> str:
        with svc.db.sessions() as db:
            return db.get(Account, who.id).password_hash

    return sign_in_page(REGISTRANT, check, password_hash, "Sign in", staff=False)


@bp.post("/sign-out")
def sign_out() -> Response:
    end_session()
    flash("You are signed out.")
    return redirect(url_for("ui.sign_in"))


# -- dashboard -----------------------------------------------------------------------------
@bp.get("/")
@registrant_page
def dashboard(me: Registrant) -> str:
    with agency().db.sessions() as db:
        own = select(Submission).where(Submission.account_id == me.id, Submission.kind.in_(UPLOAD_KINDS))
        processing = list(db.scalars(own.where(Submission.status == PROCESSING)
                                     .order_by(Submission.received_at).limit(DASHBOARD_ROWS)))
        queued = list(db.scalars(own.where(Submission.status == QUEUED)
                                 .order_by(Submission.received_at, Submission.id).limit(DASHBOARD_ROWS)))
        positions = {s.id: queue_position(db, s) for s in queued}
        recent = list(db.scalars(own.where(Submission.status.in_((COMPLETED, REFUSED, PAUSED, FAILED)))
                                 .order_by(Submission.received_at.desc(), Submission.id.desc())
                                 .limit(DASHBOARD_ROWS)))
    return render_template("pages/ui/dashboard.html.j2", title="Your submissions", me=me, processing=processing,
                           queued=queued, positions=positions, recent=recent,
                           refresh=bool(processing or queued))


def queue_position(db, submission: Submission) -> int:
    """1 for the next submission any worker takes, counting every account's queued files received earlier."""
    earlier = select(func.count()).select_from(Submission).where(
        Submission.status == QUEUED,
        tuple_(Submission.received_at, Submission.id) < tuple_(submission.received_at, submission.id))
    return (db.scalar(earlier) or 0) + 1


# -- upload --------------------------------------------------------------------------------
@bp.route("/upload", methods=["GET", "POST"])
@registrant_page
def upload(me: Registrant):
    """One file of any kind the API takes, received by that API's intake (same checks, same messages)."""
    error, status, retry_after = None, 200, None
    kind = request.form.get("kind") or "deposit"
    if request.method == "POST":
        part = request.files.get("file")
        if kind not in UPLOAD_KINDS:
            error, status = "Choose what the file is: a deposit, a URL update or a query file.", 400
        elif part is None or not part.filename:
            error, status = "Choose a file to upload.", 400
        else:
            try:
                submission = receive_upload(me, kind, part.stream, part.filename)
            except (IntakeError, QueryTextError) as exc:
                error, status, retry_after = exc.message, exc.status, getattr(exc, "retry_after", None)
            else:
                return redirect(url_for("ui.submission", submission_id=submission.id), code=303)
    response = Response(render_template("pages/ui/upload.html.j2", title="Upload a file", me=me, error=error,
                                        kinds={k: v[0] for k, v in UPLOAD_KINDS.items()}, kind=kind), status)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def receive_upload(me: Registrant, kind: str, stream, file_name: str) -> Submission:
    """Hand the file to the intake of its kind; raises IntakeError or QueryTextError as the API's would."""
    svc = agency()
    if kind == URL_UPDATE_KIND:
        return svc.url_updates.receive(me, stream, file_name, operation=WEB_OPERATION)
    if kind == QUERY_KIND:  # always a job here, so the file has a page of its own
        return svc.queries.receive(me, stream, file_name, operation=WEB_OPERATION, always_job=True)
    submission, _verdict = svc.intake.receive(me, stream, file_name, operation=WEB_OPERATION)
    return submission


# -- one submission ------------------------------------------------------------------------
def _own(me: Registrant, submission_id: int) -> Submission:
    """The account's submission of a kind these pages take (as the API: another's is as good as absent)."""
    with agency().db.sessions() as db:
        found = [s for kind in UPLOAD_KINDS if (s := subs.own_submission(db, me.id, submission_id, kind))]
    if not found:
        abort(404, f"You have no submission {submission_id}.")
    return found[0]


@bp.get("/submissions/<int:submission_id>")
@registrant_page
def submission(me: Registrant, submission_id: int) -> str:
    found = _own(me, submission_id)
    page = requested_page(agency().settings.ui_page_rows)
    statuses = QUERY_STATUSES if found.kind == QUERY_KIND else RECORD_STATUSES
    status = request.args.get("status") if request.args.get("status") in statuses else None
    doi = (request.args.get("doi") or "").strip()[:2048]
    query = select(RecordResult).where(RecordResult.submission_id == found.id)
    if status:
        query = query.where(RecordResult.status == status)
    if doi:
        query = query.where(func.upper(RecordResult.doi).contains(doi.upper(), autoescape=True))
    with agency().db.sessions() as db:
        rows = list(db.scalars(query.order_by(RecordResult.seq).offset(page.offset).limit(page.rows + 1)))
    refusal = json.loads(found.refusal or "{}") if found.status == REFUSED else None
    errors = [dict(issue, hint=hint_for(issue.get("message", ""))) for issue in (refusal or {}).get("issues", [])]
    return render_template("pages/ui/submission.html.j2", title=f"Submission {found.id}", me=me, s=found,
                           kind_label=UPLOAD_KINDS[found.kind][0], rows=rows[:page.rows],
                           more=len(rows) > page.rows, page=page, status=status, doi=doi, statuses=statuses,
                           refusal=refusal, errors=errors, refresh=not found.is_finished,
                           has_result=found.kind != "deposit" and found.status == COMPLETED)


@bp.get("/submissions/<int:submission_id>/log.xml")
@registrant_page
def submission_log(me: Registrant, submission_id: int) -> Response:
    found = _own(me, submission_id)
    return Response(subs.log_document(agency(), found), mimetype="application/xml",
                    headers={"Content-Disposition": f'attachment; filename="submission-{found.id}-log.xml"'})


@bp.get("/submissions/<int:submission_id>/file")
@registrant_page
def submission_file(me: Registrant, submission_id: int) -> Response:
    found = _own(me, submission_id)
    _label, kept, mimetype = UPLOAD_KINDS[found.kind]
    return send_file(subs.submission_file(agency(), found, kept), mimetype=mimetype,
                     download_name=found.file_name or f"submission-{found.id}-{kept}", as_attachment=True)


@bp.get("/submissions/<int:submission_id>/result.txt")
@registrant_page
def submission_result(me: Registrant, submission_id: int) -> Response:
    """A URL update's or query job's result lines, once it has completed."""
    found = _own(me, submission_id)
    if found.kind == "deposit" or found.status != COMPLETED:
        abort(404, f"Submission {submission_id} has no result file" + ("." if found.kind == "deposit"
                                                                       else f" yet: it is {found.status}."))
    response = send_file(subs.submission_file(agency(), found, QUERY_RESULT_FILE), mimetype="text/plain",
                         download_name=f"submission-{found.id}-result.txt", as_attachment=True)
    response.charset = "utf-8"
    return response


# -- DOIs ----------------------------------------------------------------------------------
@bp.get("/dois")
@registrant_page
def dois(me: Registrant) -> str:
    text = (request.args.get("q") or "").strip()[:2048]
    page = requested_page(agency().settings.ui_page_rows)
    found = []
    if text:
        query = (select(Handle.name, Handle.updated_at, MetadataRecord.title)
                 .outerjoin(MetadataRecord, MetadataRecord.doi_key == Handle.key)
                 .where(Handle.account_id == me.id))
        issn = parse_issn(text)
        if text.startswith("10."):
            query = query.where(Handle.key.startswith(doi_key(text), autoescape=True))
        elif issn is not None:
            with_issn = select(MetadataIdentifier.doi_key).where(MetadataIdentifier.kind == "issn",
                                                                 MetadataIdentifier.value == issn.canonical)
            query = query.where(Handle.key.in_(with_issn))
        else:
            query = query.where(MetadataRecord.title.ilike(f"%{text}%"))
        with agency().db.sessions() as db:
            found = list(db.execute(query.order_by(Handle.key).offset(page.offset).limit(page.rows + 1)))
    return render_template("pages/ui/dois.html.j2", title="Your DOIs", me=me, q=text, found=found[:page.rows],
                           more=len(found) > page.rows, page=page)


def _own_handle(db, me: Registrant, doi: str) -> Handle:
    handle = db.get(Handle, doi_key(doi))
    if handle is None or handle.account_id != me.id:
        abort(404, "This DOI is not registered by your account.")
    return handle


HISTORY_SUBMISSIONS = 500  # the account's latest submissions searched for a DOI's writes
HISTORY_ROWS = 50


@bp.get("/dois/<path:doi>")
@registrant_page
def doi_page(me: Registrant, doi: str) -> str:
    with agency().db.sessions() as db:
        handle = _own_handle(db, me, doi)
        values = handle_values(db, handle.name)
        record = db.get(MetadataRecord, handle.key)
        writes, resets, trail = doi_history(db, me, handle)
        own_setter = any(subs.own_submission(db, me.id, handle.submission_id, kind) for kind in UPLOAD_KINDS)
    urls = [value_text(v.data) for v in values if v.type == "URL"]  # values are bytes, as the protocol has them
    return render_template("pages/ui/doi.html.j2", title=f"DOI {handle.name}", me=me, handle=handle,
                           values=values, urls=urls, record=record, value_data=resolver.value_data,
                           writes=writes, resets=resets, trail=trail, searched=HISTORY_SUBMISSIONS,
                           own_setter=own_setter,
                           shown=HISTORY_ROWS)


def doi_history(db, me: Registrant, handle: Handle) -> tuple[list, list, list]:
    """What the stored data says about a DOI's past, newest first (there is no per-DOI version table):

    the records of the account's latest submissions that named it (each deposit's version is its batch
    timestamp; the outcome says whether it was taken), version resets, and audit events about it."""
    latest = (select(Submission.id).where(Submission.account_id == me.id,
                                          Submission.kind.in_(("deposit", URL_UPDATE_KIND)))
              .order_by(Submission.id.desc()).limit(HISTORY_SUBMISSIONS)).scalar_subquery()
    writes = list(db.execute(
        select(Submission.id, Submission.kind, Submission.batch_timestamp, Submission.received_at,
               RecordResult.status, RecordResult.outcome, RecordResult.message)
        .join(RecordResult, RecordResult.submission_id == Submission.id)
        .where(Submission.id.in_(latest), func.upper(RecordResult.doi) == func.upper(handle.name))
        .order_by(Submission.id.desc(), RecordResult.seq.desc()).limit(HISTORY_ROWS)))
    resets = list(db.scalars(select(VersionReset).where(VersionReset.handle_key == handle.key)
                             .order_by(VersionReset.id.desc()).limit(HISTORY_ROWS)))
    trail = list(db.scalars(select(AuditEvent).where(AuditEvent.subject.in_((f"doi:{handle.name}",
                                                                             f"handle:{handle.name}")))
                            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(HISTORY_ROWS)))
    return writes, resets, trail


@bp.get("/csl/<path:doi>")
@registrant_page
def doi_csl(me: Registrant, doi: str) -> Response:
    """The DOI's CSL JSON (what /{doi} answers to Accept: application/vnd.citationstyles.csl+json), as a link."""
    with agency().db.sessions() as db:
        handle = _own_handle(db, me, doi)
        record = resolver.citation_metadata(db.connection(), handle.name)
    if record is None:
        abort(404, "No indexed metadata for this DOI yet: the metadata index is loaded on a schedule.")
    return Response(json.dumps(resolver.csl_json(record), ensure_ascii=False, indent=2),
                    mimetype="application/vnd.citationstyles.csl+json")


# -- queries -------------------------------------------------------------------------------
@bp.route("/query", methods=["GET", "POST"])
@registrant_page
def query(me: Registrant):
    svc = agency()
    text = (request.form.get("lines") or "")[:QUERY_TEXT_CHARS]
    answers, error, status = None, None, 200
    if request.method == "POST":
        try:
            lines = [line for line in iter_query_lines(io.BytesIO(text.encode()), svc.settings.query_sync_lines,
                                                       svc.settings.query_max_line_chars) if line.strip()]
        except QueryTextError as exc:
            error, status = (f"{exc.message} (this form answers up to {svc.settings.query_sync_lines} lines; "
                             "send larger files to the query API)"), exc.status
        else:
            if not lines:
                error, status = "Paste at least one piped query line.", 400
            else:
                answered = svc.queries.answer_now(lines)
                if request.form.get("download"):
                    return Response(answered.text, mimetype="text/plain",
                                    headers={"Content-Disposition": 'attachment; filename="query-answers.txt"'})
                answers = [line.split("|") for line in answered.lines]
    return render_template("pages/ui/query.html.j2", title="Look up DOIs", me=me, text=text, answers=answers,
                           error=error, max_lines=svc.settings.query_sync_lines), status


# -- account -------------------------------------------------------------------------------
DELIVERIES_SHOWN = 10


@bp.route("/account", methods=["GET", "POST"])
@registrant_page
def account(me: Registrant):
    svc = agency()
    error, status, new_secret = None, 200, None
    if request.method == "POST":
        form = request.form.get("form")
        actor = Actor.account(me.login)
        try:
            with svc.db.transaction() as db:
                if form == "password":
                    new = request.form.get("new_password") or ""
                    if new != (request.form.get("repeat_password") or ""):
                        raise AccountError("The new password and its repetition differ.")
                    change_own_password(db, svc.passwords, me.login, request.form.get("old_password") or "", new)
                    done = "Your password is changed."
                elif form == "email":
                    set_email(db, actor, me.login, (request.form.get("email") or "")[:MAX_EMAIL_CHARS])
                    done = "Your contact email is changed."
                elif form == "callback":
                    had = db.get(CallbackTarget, me.id) is not None
                    target = set_callback(db, actor, me.login, (request.form.get("url") or "")[:4096],
                                          (request.form.get("endpoint") or "")[:512],
                                          svc.settings.callback_allow_private)
                    new_secret = None if had else target.secret
                    done = "Your notification callback is saved."
                elif form == "callback-remove":
                    done = ("Your notification callback is removed." if remove_callback(db, actor, me.login)
                            else "There was no notification callback.")
                elif form in ("consent", "decline"):
                    done = _transfer_step(db, me, form)
                else:
                    abort(400, "Unknown form.")
                password_hash = db.get(Account, me.id).password_hash
        except (AccountError, CallbackUrlError, transfers.TransferError) as exc:
            error, status, new_secret = str(exc), 400, None
            if isinstance(exc, CallbackUrlError):
                error = f"This callback cannot be used: {exc}."
        else:
            if form == "password":
                start_session(REGISTRANT, me.id, password_hash)  # other sessions of this account end
            if not new_secret:
                flash(done)
                return redirect(url_for("ui.account"), code=303)
    with svc.db.sessions() as db:
        email = db.get(Account, me.id).email
        target = db.get(CallbackTarget, me.id)
        callback = describe_target(target) if target else None
        deliveries = recent_deliveries(db, me.id, DELIVERIES_SHOWN)
        waiting = transfers.list_transfers(db, me, status=OPEN)
    response = Response(render_template(
        "pages/ui/account.html.j2", title="Your account", me=me, email=email, error=error,
        session_minutes=svc.settings.ui_idle_minutes, callback=callback, deliveries=deliveries,
        waiting=waiting, new_secret=new_secret), status)
    if new_secret:
        response.headers["Cache-Control"] = "no-store"  # the signing secret is shown once
    return response


def _transfer_step(db, me: Registrant, form: str) -> str:
    """This account's consent to a transfer, or its refusal (a withdrawal by a party, as the API's)."""
    transfer_id = request.form.get("transfer", type=int) or 0
    if not 0 < transfer_id < 2**31:
        raise transfers.TransferError("Choose a transfer.", 400)
    shown = transfers.view(db, transfer_id)
    if me.login not in (shown.from_login, shown.to_login):
        raise transfers.TransferError(f"No transfer {transfer_id} concerns your account.", 404)
    actor = Actor.account(me.login)
    if form == "consent":
        done = transfers.consent(db, actor, transfer_id, me.login, auto_complete=agency().settings.transfers_auto)
        return f"You consented to transfer {transfer_id}; it is {done.status}."
    reason = (request.form.get("reason") or "").strip()[:2000]
    transfers.withdraw(db, actor, transfer_id, reason=f"declined by {me.login}" + (f": {reason}" if reason else ""))
    return f"You declined transfer {transfer_id}: nothing moves."
