"""The DOI proxy face of the agency: ``GET /{doi}`` redirects to the DOI's URL.

Registered last, on a path converter that never matches ``/v1``, ``/servlet``,
``/api``, ``/static`` or the web pages' ``/ui``, ``/staff``, ``/resolve``, so it cannot shadow another blueprint. Read-only:
every request is one indexed look-up on a pooled connection (the benchmark in
``bench/resolve.py`` holds it to at least 70% of a trivial route's speed).
"""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Response, current_app, render_template, request
from markupsafe import escape
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.routing import PathConverter
from werkzeug.urls import iri_to_uri

from agency.handles import resolver
from agency.web.common import agency

log = logging.getLogger(__name__)

bp = Blueprint("resolve", __name__)

HTML = "text/html"
CSL_JSON = "application/vnd.citationstyles.csl+json"
BIBTEX = "application/x-bibtex"
METADATA_TYPES = (CSL_JSON, BIBTEX)
JSON_TYPES = ("application/json", *METADATA_TYPES)
RESERVED = ("v1", "servlet", "api", "static", "ui", "staff", "resolve")


class DoiPathConverter(PathConverter):
    """Any path except those of the other blueprints (leading slashes tolerated, as links get doubled)."""

    regex = r"(?!/*(?:" + "|".join(RESERVED) + r")(?:/|$))[\s\S]+?"  # [\s\S]: line breaks too
    part_isolating = False


# Runs before the route below is added: the converter must exist when the rule is compiled.
bp.record_once(lambda state: state.app.url_map.converters.setdefault("doipath", DoiPathConverter))


@bp.get("/healthz")
def health() -> Response:
    """Liveness probe for load balancers in front of the resolver; also the benchmark's baseline route."""
    return Response("ok\n", mimetype="text/plain")


@bp.route("/<doipath:raw>", methods=["GET"], merge_slashes=False)
def resolve_doi(raw: str) -> Response:
    problem = resolver.wsgi_path_problem(request.environ.get("PATH_INFO", ""))
    try:
        if problem:
            raise resolver.BadPath(problem)
        name = resolver.requested_name(raw)
    except resolver.BadPath as exc:
        return _bad_request(str(exc))
    wanted = _metadata_type()
    try:
        found = _look_up()(name)
        if found is None or wanted:
            with agency().db.engine.connect() as conn:
                if found is None:
                    return _not_found(resolver.diagnose(conn, name))
                return _metadata(conn, found, wanted)
    except SQLAlchemyError:
        log.exception("resolution of %r failed", name[:200])
        return _unavailable()
    if found.is_pending:
        return _pending(found)
    return _redirect(found.url or "")


def _look_up() -> resolver.FastLookUp:
    cache = current_app.extensions.setdefault("resolve", {})
    if "look_up" not in cache:
        cache["look_up"] = resolver.FastLookUp(agency().db.engine)
    return cache["look_up"]


# ---------------------------------------------------------------------------
# Content negotiation

def _explicit_accept() -> dict[str, float]:
    """Media types the client named itself (no wildcards), with their quality."""
    named: dict[str, float] = {}
    for value, quality in request.accept_mimetypes:
        media_type = value.split(";", 1)[0].strip().lower()
        if "*" not in media_type and quality > 0:
            named[media_type] = max(quality, named.get(media_type, 0))
    return named


def _metadata_type() -> str | None:
    """CSL JSON or BibTeX when the client prefers one of them to HTML; None means redirect."""
    named = _explicit_accept()
    candidates = [t for t in METADATA_TYPES if t in named]
    if not candidates:
        return None
    best = max(candidates, key=lambda t: named[t])
    return best if named[best] >= request.accept_mimetypes[HTML] else None


def wants_json() -> bool:
    named = _explicit_accept()
    quality = max((named.get(t, 0) for t in JSON_TYPES), default=0)
    return quality > 0 and quality >= request.accept_mimetypes[HTML]


# ---------------------------------------------------------------------------
# Answers

def _json(body: dict, status: int) -> Response:
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")
    response.headers["Vary"] = "Accept"
    return response


_SLOT = "\x00location\x00"


def _redirect_body_parts() -> list[str]:
    """The redirect template rendered once around a marker: each redirect then only joins the parts.

    Rendering a template costs more than the database look-up; the body is
    fixed but for the (escaped) location, so it is rendered once per process.
    """
    cache = current_app.extensions.setdefault("resolve", {})
    if "redirect" not in cache:
        template = agency().templates.get_template("pages/doi_redirect.html.j2")
        cache["redirect"] = template.render(location=_SLOT).split(_SLOT)
    return cache["redirect"]


class _RedirectResponse(Response):
    """A redirect to a URL already absolute and ASCII: Werkzeug's own Location handling
    (IRI conversion and joining with the request URL, twice) costs more than the look-up."""

    autocorrect_location_header = False

    def get_wsgi_headers(self, environ):
        return self.headers


def _redirect(url: str) -> Response:
    location = url if url.isascii() else iri_to_uri(url)
    body = str(escape(location)).join(_redirect_body_parts())
    response = _RedirectResponse(body, status=302, mimetype=HTML)
    response.headers["Location"] = location
    response.headers["Vary"] = "Accept"
    return response


def _pending(found: resolver.Registered) -> Response:
    """200, not 404: the DOI exists; like the DOI proxy for a handle with no URL, show it, do not deny it."""
    if wants_json():
        return _json({"doi": found.doi, "status": "pending_publication",
                      "message": "This DOI is registered but has no URL yet: the content is pending "
                                 "publication."}, 200)
    response = Response(render_template("pages/doi_pending.html.j2", doi=found.doi), mimetype=HTML)
    response.headers["Vary"] = "Accept"
    return response


def _not_found(diagnosis: resolver.NotFound) -> Response:
    if wants_json():
        return _json(diagnosis.as_json(), 404)
    html = render_template(
        "pages/doi_not_found.html.j2", heading="DOI Not Found", requested=diagnosis.requested,
        message=diagnosis.message, hints=diagnosis.hints, suggestion=diagnosis.suggestion,
        suggestion_href="/" + (diagnosis.suggestion or ""), elsewhere=diagnosis.elsewhere_url)
    response = Response(html, status=404, mimetype=HTML)
    response.headers["Vary"] = "Accept"
    return response


def _bad_request(message: str) -> Response:
    if wants_json():
        return _json({"error": message, "status": 400}, 400)
    html = render_template("pages/doi_not_found.html.j2", heading="Bad Request", requested=None,
                           message=message, hints=(), suggestion=None, suggestion_href="", elsewhere=None)
    return Response(html, status=400, mimetype=HTML)


def _unavailable() -> Response:
    message = "The resolver cannot read its database right now; please try again in a minute."
    if wants_json():
        response = _json({"error": message, "status": 503}, 503)
    else:
        html = render_template("pages/doi_not_found.html.j2", heading="Service Unavailable", requested=None,
                               message=message, hints=(), suggestion=None, suggestion_href="", elsewhere=None)
        response = Response(html, status=503, mimetype=HTML)
    response.headers["Retry-After"] = "60"
    return response


def _metadata(conn, found: resolver.Registered, media_type: str) -> Response:
    """CSL JSON or BibTeX from the metadata index; 406 when the index has nothing for the DOI yet."""
    record = resolver.citation_metadata(conn, found.doi)
    if record is None:
        return _json({"error": f"No indexed metadata for {found.doi} yet: the metadata index is loaded on a "
                               f"schedule after deposits. Ask without Accept: {media_type} to be redirected "
                               "to the DOI's URL.", "status": 406, "doi": found.doi}, 406)
    if media_type == CSL_JSON:
        body = json.dumps(resolver.csl_json(record), ensure_ascii=False)
        response = Response(body, mimetype=CSL_JSON)
    else:
        response = Response(resolver.bibtex(record), mimetype=BIBTEX)
        response.headers["Content-Type"] = f"{BIBTEX}; charset=utf-8"
    response.headers["Vary"] = "Accept"
    return response
