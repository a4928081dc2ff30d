"""What the page blueprints share: sign-in handling, pagination and plain-language hints for schema errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from flask import Response, redirect, render_template, request, url_for

from agency.sign_in import SignInRefused
from agency.web.ui.sessions import safe_next, sign_in_guard, start_session

MAX_ROWS = 500
SIGN_IN_FIELD_CHARS = 1024


@dataclass(frozen=True)
class Page:
    """One page of a table: which rows, and whether there are more (found by fetching one extra row)."""

    number: int
    rows: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.rows


def requested_page(default_rows: int) -> Page:
    number = max(1, min(request.args.get("page", 1, type=int), 1_000_000))
    rows = max(1, min(request.args.get("rows", default_rows, type=int), MAX_ROWS))
    return Page(number, rows)


@dataclass(frozen=True)
class SignInAnswer:
    """One sign-in from the form: who signed in, or the error to show with its status and Retry-After."""

    who: object | None
    error: str | None = None
    status: int = 200
    retry_after: int = 0


def sign_in_attempt(check: Callable[[str, str], object | None]) -> SignInAnswer:
    """Run one throttled sign-in from the posted form (the API's guard, the pages' limits)."""
    login = (request.form.get("login") or "")[:SIGN_IN_FIELD_CHARS].strip()
    password = (request.form.get("password") or "")[:SIGN_IN_FIELD_CHARS]
    if not login or not password:
        return SignInAnswer(None, "Give your login and password.", 401)
    try:
        with sign_in_guard().attempt(login, request.remote_addr or "unknown") as outcome:
            who = check(login, password)
            outcome.succeeded = who is not None
    except SignInRefused as refused:
        reason = "Too many failed sign-ins." if refused.status == 429 else "The service is busy."
        return SignInAnswer(None, f"{reason} Try again in {refused.retry_after} seconds.", refused.status,
                            refused.retry_after)
    if who is None:
        return SignInAnswer(None, "The login or password is wrong.", 401)
    return SignInAnswer(who)


def sign_in_page(role: str, check: Callable[[str, str], object | None], password_hash: Callable[[object], str],
                 title: str, staff: bool) -> Response:
    """The sign-in form of either role (GET), or one throttled attempt (POST): a fresh session, then
    the page asked for; else the form again with 401 (wrong) or 429 and Retry-After (throttled)."""
    blueprint = "staff" if staff else "ui"
    answer = SignInAnswer(None)
    if request.method == "POST":
        answer = sign_in_attempt(check)
        if answer.who is not None:
            start_session(role, answer.who.id, password_hash(answer.who))
            home = url_for("staff.overview" if staff else "ui.dashboard")
            return redirect(safe_next(request.form.get("next"), home))
    html = render_template("pages/ui/sign_in.html.j2", title=title, error=answer.error, staff=staff,
                           action=url_for(f"{blueprint}.sign_in"), next=request.values.get("next", ""))
    response = Response(html, status=answer.status)
    if answer.retry_after:
        response.headers["Retry-After"] = str(answer.retry_after)
    return response


# Plain-language hints for libxml2's schema and parser messages, first match wins.
HINTS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"Missing child element", re.I),
     "An element the schema requires is missing here: add the element named in the message."),
    (re.compile(r"This element is not expected", re.I),
     "This element is not allowed at this place: check its spelling and the order of elements."),
    (re.compile(r"is not a valid value|is not accepted by the pattern|not an element of the set", re.I),
     "The value does not have the required form (a date, a number, one of a fixed list...)."),
    (re.compile(r"length|facet", re.I), "The value is too long or too short for this element."),
    (re.compile(r"attribute", re.I), "An attribute is missing, misspelt or has a value the schema does not allow."),
    (re.compile(r"namespace|No matching global declaration", re.I),
     "The root element or its namespace is not one of the deposit schemas: check the xmlns and version."),
    (re.compile(r"not well-formed|Opening and ending tag|Premature end|StartTag|EndTag|entity", re.I),
     "The file is not well-formed XML: a tag is not closed, or a character such as & or < is not escaped."),
    (re.compile(r"DOCTYPE|external", re.I),
     "The file uses DTDs or external entities, which are refused for safety: remove the DOCTYPE."),
]


def hint_for(message: str) -> str:
    for pattern, hint in HINTS:
        if pattern.search(message or ""):
            return hint
    return "Compare this element with the schema's documentation for the version named in the file."
