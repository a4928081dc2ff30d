"""The staff console under /staff/: accounts and prefixes, the whole queue, the mail outbox,
the metadata load, the audit trail. Every change is audited with the operator as its actor."""

from __future__ import annotations

import secrets

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from agency.accounts import AccountError
from agency.admin import accounts as admin_accounts, prefixes as admin_prefixes, transfers as admin_transfers
from agency.admin.audit import Actor, events, record_event
from agency.admin.operators import StaffMember, authenticate_operator
from agency.admin.queue_control import QueueError, pause, release_lease, resume
from agency.admin.submissions import RetryRefused, retry_failed
from agency.handles.prefix_records import PrefixRecordError, set_prefix_secret
from agency.models import Account, AuditEvent, Submission
from agency.models.outbox import DEAD
from agency.models.submissions import FAILED, PAUSED, PROCESSING, QUEUED
from agency.models.transfers import OPEN
from agency.notify.outbox import list_messages, outbox_counts, retry_dead
from agency.services import handle_audit
from agency.web.common import agency
from agency.web.ui.forms import requested_page, sign_in_page
from agency.web.ui.sessions import STAFF, end_session, protect_forms, signed_in

bp = Blueprint("staff", __name__, url_prefix="/staff")
bp.before_request(protect_forms)
staff_page = signed_in(STAFF)
LIST_ROWS = 100
MAX_REASON_CHARS = 2000
GENERATED_SECRET_BYTES = 24
STAFF_PAGE = "a page of the RA staff console (operator session and CSRF token), not part of the API"
OPENAPI_EXCLUDED = {route: STAFF_PAGE for route in (
    "GET /staff/",
    "GET /staff/accounts",
    "POST /staff/accounts",
    "GET /staff/accounts/{account_id}",
    "POST /staff/accounts/{account_id}",
    "GET /staff/audit",
    "GET /staff/mail",
    "POST /staff/mail",
    "GET /staff/queue",
    "POST /staff/queue/{submission_id}/release",
    "POST /staff/queue/{submission_id}/{action}",
    "GET /staff/transfers",
    "POST /staff/transfers/{transfer_id}",
    "GET /staff/sign-in",
    "POST /staff/sign-in",
    "POST /staff/sign-out",
)}


def _actor(operator: StaffMember) -> Actor:
    return Actor.operator(operator.name)


def _reason() -> str | None:
    return (request.form.get("reason") or "").strip()[:MAX_REASON_CHARS] or None


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Response:
    svc = agency()

    def check(name: str, password: str):
        with svc.db.sessions() as db:
            return authenticate_operator(db, svc.passwords, name, password)

    return sign_in_page(STAFF, check, lambda who: who.password_hash, "Staff sign in", staff=True)


@bp.post("/sign-out")
def sign_out() -> Response:
    end_session()
    flash("You are signed out.")
    return redirect(url_for("staff.sign_in"))


@bp.get("/")
@staff_page
def overview(operator: StaffMember) -> str:
    svc = agency()
    with svc.db.sessions() as db:
        by_status = dict(db.execute(select(Submission.status, func.count()).group_by(Submission.status)).all())
        accounts = db.scalar(select(func.count()).select_from(Account)) or 0
    return render_template("pages/ui/staff_overview.html.j2", title="Staff console", operator=operator,
                           by_status=by_status, accounts=accounts, mail=outbox_counts(svc.db),
                           mddb=svc.mddb.status())


# -- accounts and prefixes -----------------------------------------------------------------
@bp.route("/accounts", methods=["GET", "POST"])
@staff_page
def accounts(operator: StaffMember):
    svc = agency()
    error, status = None, 200
    if request.method == "POST":
        form = request.form
        prefixes = [p for p in (form.get("prefixes") or "").replace(",", " ").split() if p]
        try:
            with svc.db.transaction() as db:
                created = admin_accounts.create(db, svc.passwords, _actor(operator), (form.get("login") or "").strip(),
                                                (form.get("email") or "").strip(), form.get("password") or "",
                                                prefixes)
        except AccountError as exc:
            error, status = str(exc), 400
        else:
            flash(f"Account {created.login} created.")
            return redirect(url_for("staff.account", account_id=created.id), code=303)
    text = (request.args.get("q") or "").strip()[:200]
    with svc.db.sessions() as db:
        found = admin_accounts.search_accounts(db, text, LIST_ROWS)  # prefixes loaded with them
    return render_template("pages/ui/staff_accounts.html.j2", title="Accounts", operator=operator, found=found,
                           q=text, error=error, limit=LIST_ROWS), status


@bp.route("/accounts/<int:account_id>", methods=["GET", "POST"])
@staff_page
def account(operator: StaffMember, account_id: int):
    """One account: add a prefix, move one to another account (a transfer), rotate a prefix's handle
    secret, disable or enable — each through the functions the ``agency`` command calls, audited."""
    svc = agency()
    error, status, new_secret = None, 200, None
    with svc.db.sessions() as db:
        found = db.get(Account, account_id) if 0 < account_id < 2**31 else None
        if found is None:
            abort(404, f"No account {account_id}.")
        login = found.login
    if request.method == "POST":
        action, actor, prefix = request.form.get("action"), _actor(operator), (request.form.get("prefix") or "")[:64]
        try:
            with svc.db.transaction() as db:
                if action == "prefix":
                    admin_prefixes.add(db, actor, login, prefix, _reason())
                elif action == "disable":
                    admin_accounts.disable(db, actor, login, _reason())
                elif action == "enable":
                    admin_accounts.enable(db, actor, login, _reason())
                elif action == "move-prefix":
                    moved = admin_transfers.open_transfer(db, actor, (request.form.get("to") or "").strip()[:200],
                                                          from_login=login, prefix=prefix)
                elif action == "secret":
                    new_secret = request.form.get("secret") or secrets.token_urlsafe(GENERATED_SECRET_BYTES)
                    _rotate_secret(db, operator, login, prefix, new_secret)
                else:
                    abort(400, "Unknown action.")
        except (AccountError, admin_transfers.TransferError, PrefixRecordError) as exc:
            error, status, new_secret = str(exc), 400, None
        else:
            if action == "move-prefix":
                flash(f"Transfer {moved.id} opened: {moved.line()}. It moves the prefix once both accounts have "
                      "consented and it is completed.")
                return redirect(url_for("staff.transfers"), code=303)
            if action != "secret":
                flash("Saved.")
                return redirect(url_for("staff.account", account_id=account_id), code=303)
    with svc.db.sessions() as db:
        found = db.get(Account, account_id)
        prefixes = [p.prefix for p in found.prefixes]
        trail = list(events(db, account_id=account_id, limit=LIST_ROWS))
    response = Response(render_template(
        "pages/ui/staff_account.html.j2", title=f"Account {found.login}", operator=operator, account=found,
        prefixes=prefixes, trail=trail, error=error, new_secret=new_secret,
        secret_generated=new_secret is not None and not request.form.get("secret")), status)
    if new_secret:
        response.headers["Cache-Control"] = "no-store"  # the new secret is shown once, kept nowhere
    return response


def _rotate_secret(db, operator: StaffMember, login: str, prefix: str, secret: str) -> None:
    """``agency prefixes secret``: the prefix administrator's HS_SECKEY, stored hashed (audited)."""
    owned = {p.prefix for p in admin_accounts.account_by_login(db, login).prefixes}
    if prefix.strip().lower() not in owned:
        raise AccountError(f"prefix {prefix!r} is not one of {login}'s prefixes")
    set_prefix_secret(db, prefix, secret, actor=str(_actor(operator)), audit=handle_audit)


# -- the queue, the outbox, the metadata load, the audit trail ----------------------------
QUEUE_STATES = (QUEUED, PROCESSING, PAUSED, FAILED)


@bp.get("/queue")
@staff_page
def queue(operator: StaffMember) -> str:
    page = requested_page(agency().settings.ui_page_rows)
    with agency().db.sessions() as db:
        rows = list(db.execute(
            select(Submission, Account.login).join(Account, Account.id == Submission.account_id)
            .where(Submission.status.in_(QUEUE_STATES))
            .order_by(Submission.received_at, Submission.id).offset(page.offset).limit(page.rows + 1)))
    return render_template("pages/ui/staff_queue.html.j2", title="Queue", operator=operator, rows=rows[:page.rows],
                           more=len(rows) > page.rows, page=page)


@bp.post("/queue/<int:submission_id>/release")
@staff_page
def release(operator: StaffMember, submission_id: int) -> Response:
    """Let another worker take a submission whose worker died or hangs (see admin.queue_control)."""
    svc = agency()
    try:
        with svc.db.transaction() as db:
            release_lease(db, _actor(operator), submission_id)
    except QueueError as exc:
        flash(str(exc))
    else:
        svc.worker.wakeup.set()
        flash(f"Submission {submission_id} is released: the next free worker resumes it.")
    return redirect(url_for("staff.queue"), code=303)


@bp.post("/queue/<int:submission_id>/<any(pause, resume, retry):action>")
@staff_page
def hold(operator: StaffMember, submission_id: int, action: str) -> Response:
    """Pause, resume or retry a submission, as ``agency submissions pause|resume|retry`` do (audited)."""
    svc = agency()
    try:
        if action == "retry":
            retry_failed(svc.db, submission_id, _actor(operator), reason=_reason())
            done = "queued again with a fresh set of attempts"
        else:
            with svc.db.transaction() as db:
                if action == "pause":
                    pause(db, _actor(operator), submission_id, reason=_reason())
                    done = "paused: no worker takes it until it is resumed"
                else:
                    done = f"resumed ({resume(db, _actor(operator), submission_id, reason=_reason())})"
    except (QueueError, RetryRefused) as exc:
        flash(str(exc))
    else:
        if action != "pause":
            svc.worker.wakeup.set()
        flash(f"Submission {submission_id} {done}.")
    return redirect(url_for("staff.queue"), code=303)


# -- transfers -------------------------------------------------------------------------------
@bp.get("/transfers")
@staff_page
def transfers(operator: StaffMember) -> str:
    with agency().db.sessions() as db:
        waiting = admin_transfers.list_transfers(db, status=OPEN, limit=LIST_ROWS)
        recent = [t for t in admin_transfers.list_transfers(db, limit=LIST_ROWS) if t.status != OPEN]
    return render_template("pages/ui/staff_transfers.html.j2", title="Transfers", operator=operator,
                           waiting=waiting, recent=recent)


@bp.post("/transfers/<int:transfer_id>")
@staff_page
def transfer(operator: StaffMember, transfer_id: int) -> Response:
    """Relay a party's consent (received in writing), complete or withdraw: ``agency transfers ...``."""
    svc = agency()
    action, actor = request.form.get("action"), _actor(operator)
    try:
        with svc.db.transaction() as db:
            if action in ("consent-from", "consent-to"):
                shown = admin_transfers.view(db, transfer_id)
                party = shown.from_login if action == "consent-from" else shown.to_login
                done = admin_transfers.consent(db, actor, transfer_id, party, auto_complete=svc.settings.transfers_auto)
            elif action == "complete":
                done = admin_transfers.complete(db, actor, transfer_id, _reason())
            elif action == "withdraw":
                done = admin_transfers.withdraw(db, actor, transfer_id, _reason())
            else:
                abort(400, "Unknown action.")
    except admin_transfers.TransferError as exc:
        flash(str(exc))
    else:
        flash(done.line())
    return redirect(url_for("staff.transfers"), code=303)


@bp.route("/mail", methods=["GET", "POST"])
@staff_page
def mail(operator: StaffMember):
    svc = agency()
    if request.method == "POST":
        ids = [int(i) for i in request.form.getlist("id") if i.isdigit()][:LIST_ROWS]
        count = retry_dead(svc.db, ids)
        with svc.db.transaction() as db:
            record_event(db, _actor(operator), "mail.retry", "outbox:" + ",".join(map(str, ids)),
                         after={"retried": count})
        flash(f"{count} message(s) will be tried again.")
        return redirect(url_for("staff.mail"), code=303)
    dead = list_messages(svc.db, (DEAD,), LIST_ROWS)
    return render_template("pages/ui/staff_mail.html.j2", title="Mail outbox", operator=operator, dead=dead,
                           counts=outbox_counts(svc.db), limit=LIST_ROWS)


@bp.get("/audit")
@staff_page
def audit(operator: StaffMember) -> str:
    page = requested_page(agency().settings.ui_page_rows)
    with agency().db.sessions() as db:
        rows = list(db.scalars(select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
                               .offset(page.offset).limit(page.rows + 1)))
    return render_template("pages/ui/staff_audit.html.j2", title="Audit trail", operator=operator,
                           rows=rows[:page.rows], more=len(rows) > page.rows, page=page)
