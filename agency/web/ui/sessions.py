"""Who is signed in: signed-cookie sessions, their idle timeout, CSRF protection and the sign-in throttle.

A session holds the role (registrant or staff), the id, a random session id made
fresh at every sign-in, the time of the last request and a fingerprint of the
password hash: changing the password ends every other session of that account.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
from datetime import timedelta
from pathlib import Path
from typing import Callable

from flask import Flask, abort, current_app, flash, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect

from agency.accounts import registrant_by_id
from agency.admin.operators import operator_by_id
from agency.models import Account
from agency.web.common import agency
from agency.sign_in import SignInGuard, SignInLimits

REGISTRANT, STAFF = "registrant", "staff"
csrf = CSRFProtect()


class HttpsAwareSessions(SecureCookieSessionInterface):
    """Marks the cookie Secure exactly when the request came over HTTPS (behind a proxy: X-Forwarded-Proto
    only where the deployment's ProxyFix trusts it)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure


def secret_key(settings) -> str:
    """AGENCY_SECRET_KEY, else a random key written once (0600) to the data folder."""
    if settings.secret_key:
        return settings.secret_key
    path: Path = settings.data_dir / "session-key.txt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(path, "x", encoding="ascii") as out:
                out.write(secrets.token_urlsafe(48))
            path.chmod(0o600)
        except FileExistsError:
            pass  # another process wrote it first: use theirs
    return path.read_text(encoding="ascii").strip()


def configure(app: Flask) -> None:
    settings = agency_settings(app)
    app.secret_key = secret_key(settings)
    app.session_interface = HttpsAwareSessions()
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_NAME="agency_session",
                      PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.ui_idle_minutes),
                      # Only the page blueprints check tokens (see protect_forms): the APIs use HTTP Basic.
                      WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=None)
    csrf.init_app(app)
    # The API's guard (agency.sign_in), with the pages' own, stricter limits: a person types slower than a script.
    app.extensions["ui_sign_in"] = SignInGuard(SignInLimits(failures_per_login=settings.ui_sign_in_attempts,
                                                            failures_per_address=settings.ui_sign_in_attempts,
                                                            window_seconds=settings.ui_sign_in_window_seconds))


def agency_settings(app: Flask):
    return app.extensions["agency"].settings


def protect_forms() -> None:
    """before_request of the page blueprints: every POST carries the session's CSRF token."""
    if request.method == "POST":
        csrf.protect()


def sign_in_guard() -> SignInGuard:
    return current_app.extensions["ui_sign_in"]


def fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def start_session(role: str, user_id: int, password_hash: str) -> None:
    """A fresh session (new id, nothing carried over from before sign-in)."""
    session.clear()
    session.permanent = True
    session.update(role=role, uid=user_id, sid=secrets.token_urlsafe(16), seen=int(time.time()),
                   pw=fingerprint(password_hash))


def end_session() -> None:
    session.clear()


def _live(role: str) -> bool:
    """The session is of this role and not idle too long; refreshes its last-seen time."""
    if session.get("role") != role:
        return False
    idle = agency().settings.ui_idle_minutes * 60
    if time.time() - session.get("seen", 0) > idle:
        session.clear()
        flash("You were signed out after a period without activity. Please sign in again.")
        return False
    session["seen"] = int(time.time())
    return True


def current_registrant():
    """The signed-in registrant (accounts.Registrant) or None."""
    if not _live(REGISTRANT):
        return None
    svc = agency()
    with svc.db.sessions() as db:
        account = db.get(Account, session["uid"])
        if account is None or account.disabled_at is not None or fingerprint(account.password_hash) != session.get("pw"):
            session.clear()
            return None
        return registrant_by_id(db, account.id)


def current_operator():
    if not _live(STAFF):
        return None
    with agency().db.sessions() as db:
        operator = operator_by_id(db, session["uid"])
    if operator is None or fingerprint(operator.password_hash) != session.get("pw"):
        session.clear()
        return None
    return operator


def signed_in(role: str) -> Callable:
    """View decorator: the registrant or operator is passed as the first argument; others go to sign-in.

    A session of the other role is refused with 403, not sent to sign in: it is signed in, just not here.
    """
    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            other = STAFF if role == REGISTRANT else REGISTRANT
            if session.get("role") == other:
                abort(403, "This page is for " + ("RA staff" if role == STAFF else "registrants")
                      + "; you are signed in with the other kind of account.")
            who = current_registrant() if role == REGISTRANT else current_operator()
            if who is None:
                endpoint = "ui.sign_in" if role == REGISTRANT else "staff.sign_in"
                return redirect(url_for(endpoint, next=request.full_path.rstrip("?") if request.method == "GET" else None))
            return view(who, *args, **kwargs)
        return wrapper
    return decorate


def safe_next(target: str | None, default: str) -> str:
    """Only a local path (never //host or a scheme) may be the page after sign-in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default
