"""The staff console under /staff/: accounts and prefixes, the whole queue, the mail outbox,
the metadata load, the audit trail. Every change is audited with the operator as its actor."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from agency.accounts import AccountError
from agency.admin.account_changes import add_prefix_audited, create_audited, search_accounts, set_disabled
from agency.admin.audit import Actor, events, record_event
from agency.admin.operators import StaffMember, authenticate_operator
from agency.admin.queue_control import QueueError, release_lease
from agency.models import Account, AuditEvent, Submission
from agency.models.outbox import DEAD
from agency.models.submissions import PROCESSING, QUEUED
from agency.notify.outbox import list_messages, outbox_counts, retry_dead
from agency.web.common import agency
from agency.web.ui.forms import requested_page, sign_in_page
from agency.web.ui.sessions import STAFF, end_session, protect_forms, signed_in

bp = Blueprint("staff", __name__, url_prefix="/staff")
bp.before_request(protect_forms)
staff_page = signed_in(STAFF)
LIST_ROWS = 100
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
    "GET /staff/sign-in",
    "POST /staff/sign-in",
    "POST /staff/sign-out",
)}


def _actor(operator: StaffMember) -> Actor:
    return Actor.operator(operator.name)


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
                created = create_audited(db, svc.passwords, _actor(operator), (form.get("login") or "").strip(),
                                         (form.get("email") or "").strip(), form.get("password") or "", prefixes)
        except AccountError as exc:
            error, status = str(exc), 400
        else:
            flash(f"Account {created.login} created.")
            return redirect(url_for("staff.account", account_id=created.id), code=303)
    text = (request.args.get("q") or "").strip()[:200]
    with svc.db.sessions() as db:
        found = search_accounts(db, text, LIST_ROWS)
        for account in found:
            _ = account.prefixes  # loaded while the session is open
    return render_template("pages/ui/staff_accounts.html.j2", title="Accounts", operator=operator, found=found,
                           q=text, error=error, limit=LIST_ROWS), status


@bp.route("/accounts/<int:account_id>", methods=["GET", "POST"])
@staff_page
def account(operator: StaffMember, account_id: int):
    svc = agency()
    error, status = None, 200
    if request.method == "POST":
        action = request.form.get("action")
        try:
            with svc.db.transaction() as db:
                if action == "prefix":
                    add_prefix_audited(db, _actor(operator), account_id, request.form.get("prefix") or "")
                elif action in ("disable", "enable"):
                    set_disabled(db, _actor(operator), account_id, action == "disable",
                                 (request.form.get("reason") or "").strip()[:2000] or None)
                else:
                    abort(400, "Unknown action.")
        except AccountError as exc:
            error, status = str(exc), 400
        else:
            flash("Saved.")
            return redirect(url_for("staff.account", account_id=account_id), code=303)
    with svc.db.sessions() as db:
        found = db.get(Account, account_id)
        if found is None:
            abort(404, f"No account {account_id}.")
        prefixes = [p.prefix for p in found.prefixes]
        trail = list(events(db, account_id=account_id, limit=LIST_ROWS))
    return render_template("pages/ui/staff_account.html.j2", title=f"Account {found.login}", operator=operator,
                           account=found, prefixes=prefixes, trail=trail, error=error), status


# -- the queue, the outbox, the metadata load, the audit trail ----------------------------
@bp.get("/queue")
@staff_page
def queue(operator: StaffMember) -> str:
    page = requested_page(agency().settings.ui_page_rows)
    with agency().db.sessions() as db:
        rows = list(db.execute(
            select(Submission, Account.login).join(Account, Account.id == Submission.account_id)
            .where(Submission.status.in_((QUEUED, PROCESSING)))
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
