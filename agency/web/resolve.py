"""The DOI proxy face of the agency: ``GET /{doi}`` redirects to the DOI's URL.

Registered last, on a path converter that never matches ``/v1``, ``/servlet``,
``/api``, ``/static`` or the web pages' ``/ui``, ``/staff``, ``/resolve``, so it cannot shadow another blueprint. Read-only:
every request is one indexed look-up on a pooled connection (the benchmark in
``bench/resolve.py`` holds it to at least 70% of a trivial route's speed).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
import zlib
from dataclasses import dataclass

from flask import Blueprint, Response, current_app, render_template, request
from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from werkzeug.routing import PathConverter
from werkzeug.urls import iri_to_uri

from agency.handles import formats, resolver
from agency.handles.doi_syntax import doi_key
from agency.handles.store import handle_values
from agency.operations.metrics import observe_resolution
from agency.web import openapi
from agency.web.common import agency, error_body, http_date, not_modified

log = logging.getLogger(__name__)

bp = Blueprint("resolve", __name__)

OPENAPI_EXCLUDED = {"GET /healthz": "liveness probe for load balancers, not part of the API"}
_METADATA_CONTENT = openapi.content_response(
    "Metadata in the negotiated type; or the values (?noredirect); or a DOI pending publication", "text/html",
    "application/json", *formats.METADATA_TYPES)
_CACHE_HEADERS = {"ETag": openapi.header("validator for If-None-Match"),
                  "Cache-Control": openapi.header("public, max-age from the URL value's TTL"),
                  "Access-Control-Allow-Origin": openapi.header("*: public data")}
OPENAPI_PATHS = {
    "/{doi}": {"get": openapi.operation(
        "Resolve a DOI as the DOI proxy does: redirect, or metadata by content negotiation", tags=["Resolution"],
        basic_auth=False,
        description="The DOI is the whole path (its slash unencoded), also pasted as doi:, info:doi/ or a "
                    "doi.org link. Accept chooses: CSL JSON, BibTeX, RIS, text/x-bibliography (style=apa, "
                    "locale=en-US), unixref (as deposited), RDF/XML or Turtle; highest q wins, ties to the first "
                    "listed; anything else redirects. If-None-Match / If-Modified-Since answer 304.",
        parameters=[openapi.path_param("doi", description="e.g. 10.5555/abc123"),
                    openapi.query_param("noredirect", description="show the handle's values instead"),
                    openapi.query_param("index", {"type": "integer"}, "the value at this index"),
                    openapi.query_param("type", description="the value of this type, e.g. URL"),
                    openapi.query_param("urlappend", description="appended to the URL redirected to")],
        responses={"302": {"description": "To the DOI's URL",
                           "headers": {"Location": openapi.header("the URL"), **_CACHE_HEADERS}},
                   "200": {**_METADATA_CONTENT, "headers": _CACHE_HEADERS},
                   "204": {"description": "The DOI exists but has no metadata (not indexed yet)"},
                   "304": {"description": "Not modified since the copy the client holds"},
                   **{str(status): openapi.content_response(text, "text/html", "application/json")
                      for status, text in ((400, "Not a DOI at all"), (404, "Not registered here, with why"),
                                           (406, "Not available in the requested type (e.g. an unknown style)"),
                                           (503, "The database cannot be read"))}})},
    "/doiRA/{dois}": {"get": openapi.operation(
        "Which Registration Agency registered each DOI (comma-separated), as doi.org's /doiRA answers",
        tags=["Resolution"], basic_auth=False, parameters=[openapi.path_param("dois")],
        responses={"200": openapi.json_response("One entry per DOI", {"type": "array", "items": {
            "type": "object", "required": ["DOI"], "properties": {
                "DOI": {"type": "string"}, "RA": {"type": "string"}, "status": {"type": "string"}}}}),
            "503": openapi.content_response("The database cannot be read", "text/html", "application/json")})},
}

HTML = formats.HTML
JSON_TYPES = ("application/json", formats.CSL_JSON, formats.CITEPROC_JSON)
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


def _measured(view):
    """Count each resolution by outcome (from its status) and time it, for /metrics."""
    @functools.wraps(view)
    def measured(*args, **kwargs) -> Response:
        started = time.perf_counter()
        response = view(*args, **kwargs)
        observe_resolution(response.status_code, time.perf_counter() - started)
        return response

    return measured


@bp.route("/<doipath:doi>", methods=["GET"], merge_slashes=False)
@_measured
def resolve_doi(doi: str) -> Response:
    problem = resolver.wsgi_path_problem(request.environ.get("PATH_INFO", ""))
    try:
        if problem:
            raise resolver.BadPath(problem)
        name = resolver.requested_name(doi)
        options = proxy_options() if request.query_string else NO_OPTIONS
    except resolver.BadPath as exc:
        return _bad_request(str(exc))
    choice = formats.negotiate(request.environ.get("HTTP_ACCEPT"))
    try:
        found = _look_up()(name)
        # Issue 13 slots in here: an alias resolves to its primary, a withdrawn DOI to its tombstone.
        if found is None or choice.media_type or options.needs_values:
            with agency().db.engine.connect() as conn:
                if found is None:
                    return _not_found(resolver.diagnose(conn, name))
                if options.noredirect:
                    return _values_page(conn, found, options)
                if choice.media_type:
                    return _metadata(conn, found, choice)
                return _chosen_value_redirect(conn, found, options)
    except SQLAlchemyError:
        log.exception("resolution of %r failed", name[:200])
        return _unavailable()
    if found.is_pending:
        return _pending(found)
    return _cached(found, found.etag, lambda headers: _redirect(found.url + options.urlappend, headers),
                   expose=False)


# ---------------------------------------------------------------------------
# The proxy's query parameters: ?noredirect, ?index=N, ?type=T, ?urlappend=S

@dataclass(frozen=True)
class ProxyOptions:
    noredirect: bool = False
    indexes: tuple[int, ...] = ()
    types: tuple[str, ...] = ()
    urlappend: str = ""

    @property
    def needs_values(self) -> bool:
        return self.noredirect or bool(self.indexes or self.types)


NO_OPTIONS = ProxyOptions()
MAX_URLAPPEND_CHARS = 1024


def proxy_options() -> ProxyOptions:
    """The parameters people use with the DOI and handle proxies (raises BadPath naming a bad one)."""
    args = request.args
    try:
        indexes = tuple(resolver.parse_indexes(args.getlist("index")))
    except ValueError as exc:
        raise resolver.BadPath(str(exc)) from None
    append = args.get("urlappend", "")
    if len(append) > MAX_URLAPPEND_CHARS or not append.isprintable():
        raise resolver.BadPath(f"urlappend is at most {MAX_URLAPPEND_CHARS} characters of text without control "
                               "characters.")
    return ProxyOptions(noredirect="noredirect" in args, indexes=indexes,
                        types=tuple(t for t in args.getlist("type") if t), urlappend=append)


def _chosen_value_redirect(conn, found: resolver.Registered, options: ProxyOptions) -> Response:
    """Redirect to the URL value picked by ?index / ?type; 404 when none of them is a URL."""
    with Session(conn) as session:
        chosen = resolver.select_values(handle_values(session, found.doi), options.types, options.indexes)
    url_value = next((v for v in chosen if resolver.type_matches(v.type, "URL")), None)
    if url_value is None:
        asked = ", ".join([*(f"index {i}" for i in options.indexes), *(f"type {t}" for t in options.types)])
        return _not_found(resolver.NotFound(found.doi, "no_such_value",
                                            f"{found.doi} has no URL value at {asked}.",
                                            ("Leave out ?index= and ?type= to be sent to the DOI's URL, or add "
                                             "?noredirect to see every value.",)))
    url = bytes(url_value.data).decode("utf-8", "replace")  # values are bytes, as the protocol carries them
    etag = f'"{found.revision}-{url_value.index}-{zlib.crc32(url_value.data):08x}"'
    return _cached(found, etag, lambda headers: _redirect(url + options.urlappend, headers),
                   expose=False)


def _values_page(conn, found: resolver.Registered, options: ProxyOptions) -> Response:
    """?noredirect: the handle's values (the Handle.Net REST JSON, or a page), as the proxies show them."""
    with Session(conn) as session:
        answer = resolver.handle_record(session, found.doi, agency().settings.handle_ttl, options.types,
                                        options.indexes)
    if wants_json():
        response = _json(answer.body, 200)
    else:
        response = Response(render_template("pages/doi_values.html.j2", doi=found.doi,
                                            values=answer.body.get("values", [])), mimetype=HTML)
    return _public(response, found)


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


def wants_json() -> bool:
    named = _explicit_accept()
    quality = max((named.get(t, 0) for t in JSON_TYPES), default=0)
    return quality > 0 and quality >= request.accept_mimetypes[HTML]


# ---------------------------------------------------------------------------
# Answers

def _json(body, status: int) -> Response:
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


_HTML_TYPE = ("Content-Type", "text/html; charset=utf-8")


def _redirect(url: str, headers: list[tuple[str, str]]) -> Response:
    """302 to ``url``; the headers are handed over as one list (setting them one by one costs more than
    the look-up)."""
    location = url if url.isascii() else iri_to_uri(url)
    body = str(escape(location)).join(_redirect_body_parts())
    return _RedirectResponse(body, status=302, headers=[_HTML_TYPE, ("Location", location), *headers])


def _pending(found: resolver.Registered) -> Response:
    """200, not 404: the DOI exists; like the DOI proxy for a handle with no URL, show it, do not deny it."""
    if wants_json():
        return _public(_json({"doi": found.doi, "status": "pending_publication",
                              "message": "This DOI is registered but has no URL yet: the content is pending "
                                         "publication."}, 200), found)
    response = Response(render_template("pages/doi_pending.html.j2", doi=found.doi), mimetype=HTML)
    return _public(response, found)


def _not_found(diagnosis: resolver.NotFound) -> Response:
    if wants_json():
        return _public(_json(diagnosis.as_json(), 404))
    html = render_template(
        "pages/doi_not_found.html.j2", heading="DOI Not Found", requested=diagnosis.requested,
        message=diagnosis.message, hints=diagnosis.hints, suggestion=diagnosis.suggestion,
        suggestion_href="/" + (diagnosis.suggestion or ""), elsewhere=diagnosis.elsewhere_url)
    return _public(Response(html, status=404, mimetype=HTML))


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


_JSON_TYPES = (formats.CSL_JSON, formats.CITEPROC_JSON)


def _metadata(conn, found: resolver.Registered, choice: formats.Choice) -> Response:
    """The DOI's metadata in the chosen type: 204 when there is none yet, 406 when it cannot be had in that type."""
    media_type = choice.media_type
    if media_type == formats.UNIXREF:
        body = _unixref(conn, found)
    elif media_type == formats.DATACITE_XML:
        body = _datacite_xml(conn, found)
    else:
        record = resolver.citation_metadata(conn, found.doi)
        if record is None:
            body = None
        elif media_type in _JSON_TYPES:
            body = json.dumps(resolver.csl_json(record), ensure_ascii=False).encode()
        elif media_type == formats.BIBTEX:
            body = resolver.bibtex(record).encode()
        elif media_type == formats.RIS:
            body = formats.ris(record).encode()
        elif media_type == formats.TURTLE:
            body = formats.turtle(record).encode()
        elif media_type == formats.RDF_XML:
            body = formats.rdf_xml(record)
        else:
            try:
                body = formats.formatted_citation(record, agency().settings.template_dir,
                                                  choice.params.get("style"), choice.params.get("locale")).encode()
            except formats.UnknownStyle as exc:
                return _public(_json(error_body(406, str(exc), "unknown_style", {"doi": found.doi}), 406), found)
    if body is None:
        # doi.org's 204: the DOI exists, but there is no metadata for it (here: not indexed yet).
        return _public(Response(status=204), found)
    etag = '"m' + hashlib.sha1(body).hexdigest()[:20] + '"'
    content_type = media_type if media_type in (formats.RDF_XML, formats.UNIXREF, formats.DATACITE_XML) \
        else f"{media_type}; charset=utf-8"
    return _cached(found, etag, lambda headers: Response(body, headers=[("Content-Type", content_type), *headers]))


def _datacite_xml(conn, found: resolver.Registered) -> bytes | None:
    """The latest kernel-4 record of a findable DOI registered through the MDS API (None otherwise)."""
    from agency.models import DataciteDoi

    return conn.execute(select(DataciteDoi.xml).where(DataciteDoi.key == doi_key(found.doi),
                                                      DataciteDoi.state == "findable")).scalar()


def _unixref(conn, found: resolver.Registered) -> bytes | None:
    """The metadata as deposited, from the batch that last registered the DOI."""
    from agency.metadata.unixref import deposited_record
    from agency.models import Handle, Submission

    row = conn.execute(select(Submission.storage_path, Handle.prefix, Handle.version)
                       .join(Submission, Submission.id == Handle.submission_id)
                       .where(Handle.key == doi_key(found.doi))).first()
    if row is None:
        return None
    return deposited_record(agency().settings.batch_dir, row.storage_path, found.doi, row.prefix,
                            row.version.lstrip("0") or "0")


# ---------------------------------------------------------------------------
# Caching and CORS, as the DOI proxy answers public reads

def _max_age(found: resolver.Registered) -> int:
    settings = agency().settings
    ttl = found.ttl if found.ttl is not None else settings.handle_ttl
    return max(0, min(ttl, settings.resolve_max_age_seconds))


_EXPOSED = "Location, ETag, Last-Modified, Link"


def _public_headers(found: resolver.Registered | None, expose: bool = True) -> list[tuple[str, str]]:
    """What every public read carries: CORS, Vary, and for a registered DOI how long it may be cached.
    (A redirect needs no exposed headers: scripts never see a redirect's headers, fetch follows it.)"""
    headers = [("Vary", "Accept"), ("Access-Control-Allow-Origin", "*")]
    if expose:
        headers.append(("Access-Control-Expose-Headers", _EXPOSED))
    if found is not None:
        headers.append(("Cache-Control", f"public, max-age={_max_age(found)}"))
    return headers


def _public(response: Response, found: resolver.Registered | None = None) -> Response:
    for name, value in _public_headers(found):
        response.headers[name] = value
    return response


def _cached(found: resolver.Registered, etag: str, build, expose: bool = True) -> Response:
    """``build(headers)``'s answer with validators, or 304 when the client's copy is current."""
    headers = _public_headers(found, expose)
    headers.append(("ETag", etag))
    if found.updated_at is not None:
        headers.append(("Last-Modified", http_date(found.updated_at)))
    if not_modified(etag, found.updated_at):
        return Response(status=304, headers=headers)
    return build(headers)


# ---------------------------------------------------------------------------
# Which agency registered a DOI

@bp.get("/doiRA/<path:dois>")
def registration_agency(dois: str) -> Response:
    """doi.org's /doiRA: ``[{"DOI": ..., "RA": ...}]``, several DOIs separated by commas."""
    names = [n.strip() for n in dois.split(",") if n.strip()][:MAX_DOIRA_NAMES]
    settings = agency().settings
    answers = []
    try:
        for raw in names:
            try:
                name = resolver.requested_name(raw)
            except resolver.BadPath:
                answers.append({"DOI": raw[:resolver.MAX_PATH_CHARS], "status": "Invalid DOI"})
                continue
            found = _look_up()(name)
            answers.append({"DOI": found.doi, "RA": settings.ra_name} if found else
                           {"DOI": name, "status": "DOI does not exist"})
    except SQLAlchemyError:
        log.exception("doiRA look-up failed")
        return _unavailable()
    return _public(_json(answers, 200))


MAX_DOIRA_NAMES = 100
