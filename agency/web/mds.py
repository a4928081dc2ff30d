"""DataCite's MDS API: the endpoints and plain-text answers DataCite documents, over agency's handle store.

Mounted at ``/mds``; requests whose Host is one of ``AGENCY_MDS_HOSTS`` are the
MDS API at ``/`` too (``MdsHostRouting`` rewrites their path), as DataCite
serves it from its own host name. Every refusal names what to fix.
"""

from __future__ import annotations

from typing import Callable, Iterator

from flask import Blueprint, Response, request, stream_with_context

from agency.accounts import Registrant
from agency.datacite.kernel4 import MAX_METADATA_BYTES, MetadataRefused
from agency.datacite.states import MdsRefused
from agency.handles.doi_syntax import doi_key
from agency.web.common import agency, basic_auth_registrant

bp = Blueprint("mds", __name__, url_prefix="/mds")

_MDS = ("DataCite's MDS API: a plain-text protocol DataCite documents (its MDS API guide), served as DataCite "
        "answers it; the README lists the endpoints")
_MDS_ROUTES = ("DELETE /mds/doi/{doi}", "DELETE /mds/metadata/{doi}", "GET /mds/doi", "GET /mds/doi/{doi}",
               "GET /mds/media/{doi}", "GET /mds/metadata/{doi}", "POST /mds/doi", "POST /mds/media/{doi}",
               "POST /mds/metadata", "PUT /mds/doi/{doi}", "PUT /mds/metadata/{doi}")
OPENAPI_EXCLUDED = {
    **{route: _MDS for route in _MDS_ROUTES},
    **{f"{method} {path}": "the MDS API's plain-text 404 for paths it does not have"
       for method in ("GET", "POST", "PUT", "DELETE") for path in ("/mds/", "/mds/{rest}")},
}

MAX_TEXT_BODY_BYTES = 64 * 1024  # doi=/url= and media bodies: a few lines
XML_TYPES = ("application/xml", "text/xml")
ROOT_MOUNTED = "agency.mds_at_root"
AUTH_MESSAGE = ("Login and password required: use HTTP Basic with your agency account's login and password "
                "(the same as for Crossref deposits), or they are wrong.")


class MdsHostRouting:
    """WSGI: on an MDS host, ``/metadata/...`` is served as ``/mds/metadata/...``."""

    def __init__(self, wsgi_app: Callable, hosts: frozenset[str]) -> None:
        self.wsgi_app = wsgi_app
        self.hosts = hosts

    def __call__(self, environ: dict, start_response: Callable):
        host = (environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "").rsplit(":", 1)[0].lower()
        path = environ.get("PATH_INFO", "")
        if host in self.hosts and not path.startswith("/mds/") and path != "/mds":
            environ["PATH_INFO"] = "/mds" + path
            environ[ROOT_MOUNTED] = True
        return self.wsgi_app(environ, start_response)


def text(status: int, message: str) -> Response:
    response = Response(message.rstrip("\n") + "\n" if status >= 400 else message, status=status,
                        mimetype="text/plain")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="agency MDS", charset="UTF-8"'
    return response


def mds_base() -> str:
    return request.host_url.rstrip("/") + ("" if request.environ.get(ROOT_MOUNTED) else "/mds")


def _media_type() -> str:
    return (request.mimetype or "").lower()


def _refuse_type(expected: str, example: str) -> Response:
    given = request.content_type or "none"
    form = _media_type() in ("application/x-www-form-urlencoded", "multipart/form-data")
    hint = " Form fields are not read here: send the content itself as the request body." if form else ""
    return text(415, f"Unsupported Content-Type {given}: send {expected} with Content-Type: {example}.{hint}")


def _body(limit: int) -> bytes | Response:
    """The request body, or a 413 answer when it is over ``limit`` bytes (checked before reading it all)."""
    if request.content_length is not None and request.content_length > limit:
        return text(413, f"The body is {request.content_length} bytes, over the limit of {limit} bytes.")
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        return text(413, f"The body is over the limit of {limit} bytes.")
    return data


def mds_view(view: Callable) -> Callable:
    """Authenticate (401), run ``view(registrant, ...)`` and turn refusals into their plain-text answers."""
    def guarded(*args, **kwargs):
        registrant = basic_auth_registrant()
        if registrant is None:
            return text(401, AUTH_MESSAGE)
        try:
            return view(registrant, *args, **kwargs)
        except MdsRefused as refused:
            return text(refused.status, refused.message)
        except MetadataRefused as refused:
            return text(refused.status, str(refused))
    guarded.__name__ = view.__name__
    guarded.__doc__ = view.__doc__
    return guarded


# -- metadata ----------------------------------------------------------------------------------

@bp.post("/metadata")
@mds_view
def post_metadata(registrant: Registrant) -> Response:
    """Store a kernel-4 record; the DOI is its <identifier>."""
    return _store_metadata(registrant, None)


@bp.put("/metadata/<path:doi>")
@mds_view
def put_metadata(registrant: Registrant, doi: str) -> Response:
    """Store a kernel-4 record for the DOI in the path (its <identifier> must be that DOI)."""
    return _store_metadata(registrant, doi)


def _store_metadata(registrant: Registrant, path_doi: str | None) -> Response:
    if _media_type() not in XML_TYPES:
        return _refuse_type("one DataCite kernel-4 XML record", "application/xml;charset=UTF-8")
    body = _body(MAX_METADATA_BYTES)
    if isinstance(body, Response):
        return body
    svc = agency()
    with svc.db.transaction() as session:
        stored = svc.mds.store_metadata(session, registrant, body, path_doi)
    response = text(201, f"OK ({stored.doi})")
    response.headers["Location"] = f"{mds_base()}/metadata/{stored.doi}"
    return response


@bp.get("/metadata/<path:doi>")
@mds_view
def get_metadata(registrant: Registrant, doi: str) -> Response:
    svc = agency()
    with svc.db.sessions() as session:
        xml = svc.mds.metadata(session, registrant, doi)
    return Response(xml, status=200, mimetype="application/xml")


@bp.delete("/metadata/<path:doi>")
@mds_view
def delete_metadata(registrant: Registrant, doi: str) -> Response:
    """Hide: a findable DOI becomes registered (it still resolves)."""
    svc = agency()
    with svc.db.transaction() as session:
        svc.mds.hide(session, registrant, doi)
    return text(200, "OK")


# -- DOIs ----------------------------------------------------------------------------------------

def _doi_lines(body: bytes) -> tuple[str, str] | Response:
    """The (doi, url) of a two-line ``doi=``/``url=`` body, or the 400 answer saying what is wrong."""
    try:
        content = body.decode("utf-8")
    except UnicodeDecodeError:
        return text(400, "The body is not UTF-8 text: send the two lines doi=<DOI> and url=<URL> in UTF-8.")
    lines = [line.strip() for line in content.splitlines() if line.strip()]
    values: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition("=")
        if not sep or name.strip().lower() not in ("doi", "url"):
            return text(400, f"Unexpected line {line[:100]!r}: the body must be exactly two lines, "
                             "doi=<DOI> and url=<URL>.")
        if name.strip().lower() in values:
            return text(400, f"The {name.strip().lower()}= line is given twice; give it once.")
        values[name.strip().lower()] = value.strip()
    missing = [f"{name}=" for name in ("doi", "url") if not values.get(name)]
    if missing:
        return text(400, f"The body must be exactly two lines, doi=<DOI> and url=<URL>; "
                         f"the {' and '.join(missing)} line{'s are' if len(missing) > 1 else ' is'} missing or empty.")
    return values["doi"], values["url"]


def _register(registrant: Registrant, path_doi: str | None) -> Response:
    if _media_type() != "text/plain":
        return _refuse_type("the two lines doi=<DOI> and url=<URL>", "text/plain;charset=UTF-8")
    body = _body(MAX_TEXT_BODY_BYTES)
    if isinstance(body, Response):
        return body
    parsed = _doi_lines(body)
    if isinstance(parsed, Response):
        return parsed
    doi, url = parsed
    if path_doi is not None and doi_key(doi) != doi_key(path_doi):
        return text(400, f"The doi= line ({doi[:200]}) is not the DOI in the URL ({path_doi[:200]}); "
                         "make them the same.")
    svc = agency()
    with svc.db.transaction() as session:
        svc.mds.register_url(session, registrant, path_doi or doi, url)
    return text(201, "OK")


@bp.put("/doi/<path:doi>")
@mds_view
def put_doi(registrant: Registrant, doi: str) -> Response:
    """Register the URL: the DOI is minted (findable) or re-pointed."""
    return _register(registrant, doi)


@bp.post("/doi")
@mds_view
def post_doi(registrant: Registrant) -> Response:
    return _register(registrant, None)


@bp.get("/doi/<path:doi>")
@mds_view
def get_doi(registrant: Registrant, doi: str) -> Response:
    svc = agency()
    with svc.db.sessions() as session:
        url = svc.mds.url_of(session, registrant, doi)
    if url is None:
        return Response(status=204)  # known, not minted: a draft
    return text(200, url)


@bp.get("/doi")
@mds_view
def list_dois(registrant: Registrant) -> Response:
    """The account's minted DOIs, one per line, streamed; 204 when there are none."""
    lines = _doi_lines_of(registrant)
    first = next(lines, None)
    if first is None:
        return Response(status=204)

    def rest() -> Iterator[str]:
        yield first
        yield from lines
    return Response(stream_with_context(rest()), status=200, mimetype="text/plain")


def _doi_lines_of(registrant: Registrant) -> Iterator[str]:
    svc = agency()
    with svc.db.sessions() as session:
        for doi in svc.mds.dois(session, registrant):
            yield doi + "\n"


@bp.delete("/doi/<path:doi>")
@mds_view
def delete_doi(registrant: Registrant, doi: str) -> Response:
    """Delete a draft (405 for registered or findable DOIs)."""
    svc = agency()
    with svc.db.transaction() as session:
        svc.mds.delete_draft(session, registrant, doi)
    return text(200, "OK")


# -- media ----------------------------------------------------------------------------------------

@bp.get("/media/<path:doi>")
@mds_view
def get_media(registrant: Registrant, doi: str) -> Response:
    svc = agency()
    with svc.db.sessions() as session:
        pairs = svc.mds.media(session, registrant, doi)
    return text(200, "".join(f"{mime}={url}\n" for mime, url in pairs))


@bp.post("/media/<path:doi>")
@mds_view
def post_media(registrant: Registrant, doi: str) -> Response:
    if _media_type() != "text/plain":
        return _refuse_type("mime-type=URL lines", "text/plain;charset=UTF-8")
    body = _body(MAX_TEXT_BODY_BYTES)
    if isinstance(body, Response):
        return body
    pairs = []
    for line in body.decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        mime, sep, url = line.strip().partition("=")
        if not sep:
            return text(400, f"Invalid media line {line[:100]!r}: each line is mime-type=URL, "
                             "e.g. application/pdf=https://example.org/file.pdf")
        pairs.append((mime.strip(), url.strip()))
    if not pairs:
        return text(400, "The body has no media lines: send mime-type=URL lines.")
    svc = agency()
    with svc.db.transaction() as session:
        svc.mds.add_media(session, registrant, doi, pairs)
    return text(200, "OK")


@bp.route("/", defaults={"rest": ""}, methods=["GET", "POST", "PUT", "DELETE"])
@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "DELETE"])
def unknown(rest: str) -> Response:
    """Anything else under the MDS API: say what exists (not the resolver's page)."""
    return text(404, f"No MDS endpoint /{rest[:200]}: the MDS API has /metadata, /metadata/{{doi}}, /doi, "
                     "/doi/{doi} and /media/{doi}.")
