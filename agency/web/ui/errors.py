"""Error answers on the web pages: the layout with a plain message, never a stack trace."""

from __future__ import annotations

from flask import Response, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

PAGE_PREFIXES = ("/ui/", "/staff/")
MESSAGES = {
    400: "The request could not be understood.",
    403: "You may not open this page.",
    404: "There is no such page.",
    405: "This page does not take that kind of request.",
    500: "Something went wrong on our side; the error is logged. Please try again later.",
}


def is_page_path(path: str) -> bool:
    return path in ("/", "/ui", "/staff", "/resolve") or path.startswith(PAGE_PREFIXES)


def page_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    if isinstance(exc, CSRFError):
        message = ("The form had expired or did not come from this site (its security token is missing or "
                   "wrong). Go back, reload the page and send the form again.")
    elif code in (403, 404) and exc.description and not exc.description.startswith(("The requested URL",
                                                                                       "You don't have")):
        message = exc.description  # our own, written for the reader
    else:
        message = MESSAGES.get(code, exc.name)
    html = render_template("pages/ui/error.html.j2", title=f"{code} {exc.name}", message=message, error=None)
    return Response(html, status=code, mimetype="text/html")
