"""The Flask application factory: builds the agency and registers its blueprints."""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from agency.config import Settings, load_settings
from agency.runtime.storage_errors import is_out_of_space
from agency.sign_in import SignInRefused
from agency.services import Agency, build_agency
from agency.templating import TEMPLATE_OPTIONS

from agency.web.server import MULTIPART_OVERHEAD


def create_app(settings: Settings | None = None, agency: Agency | None = None,
               start_background: bool = False) -> Flask:
    settings = settings or (agency.settings if agency else load_settings())
    agency = agency or build_agency(settings)
    app = Flask(__name__, template_folder=str(settings.template_dir))
    app.jinja_options = {**app.jinja_options, **TEMPLATE_OPTIONS}  # Flask's autoescape misses *.html.j2
    app.config["MAX_CONTENT_LENGTH"] = settings.max_batch_bytes + MULTIPART_OVERHEAD
    app.config["MAX_FORM_PARTS"] = settings.max_form_parts
    # Keys in the order the answer builds them (seq, doi, status, msg): reads better, and sorting
    # the keys of every record of a large batch's answer cost more than encoding them.
    app.json.sort_keys = False
    app.extensions["agency"] = agency

    from agency.web import deposits_api, pages, servlet

    app.register_blueprint(pages.bp)
    app.register_blueprint(deposits_api.bp)
    app.register_blueprint(servlet.bp)
    from agency.web import api_docs, callbacks_api, handles_api, queries, resolve

    app.register_blueprint(api_docs.bp)
    app.register_blueprint(callbacks_api.bp)
    app.register_blueprint(handles_api.bp)
    app.register_blueprint(handles_api.prefixes_bp)
    app.register_blueprint(queries.bp)
    from agency.web import mds, operations

    app.register_blueprint(operations.bp)
    from agency.web import records_admin

    app.register_blueprint(records_admin.bp)
    from agency.web import admin_api

    app.register_blueprint(admin_api.bp)
    from agency.web import ui

    ui.register(app)  # /, /ui/, /staff/: before the catch-all resolver
    app.register_blueprint(mds.bp)
    if settings.mds_host_names:
        app.wsgi_app = mds.MdsHostRouting(app.wsgi_app, settings.mds_host_names)
    # Keep last: the catch-all /{doi} route (it never matches /v1, /servlet, /api, /static).
    app.register_blueprint(resolve.bp)
    _register_error_pages(app)
    if start_background:
        agency.start_background()
    return app


def _register_error_pages(app: Flask) -> None:
    from agency.web.common import json_error
    from agency.web.servlet import failure

    @app.before_request
    def refuse_oversized_from_content_length() -> None:
        """413 from the Content-Length header alone, before a byte of the body is read (any server)."""
        if (request.content_length or 0) > app.config["MAX_CONTENT_LENGTH"]:
            raise RequestEntityTooLarge()

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc) -> Response:
        limit = app.extensions["agency"].settings.max_batch_bytes
        message = _form_limit_message(exc, app) or \
            f"The request is larger than the limit of {limit} bytes; split the batch."
        if request.path.startswith("/servlet"):
            return failure(413, message)
        return json_error(413, message)

    @app.errorhandler(OSError)
    def out_of_space(exc: OSError) -> Response:
        """A full disk while reading a request (multipart parts spill to temporary files): 507, not 500."""
        from agency.deposit.intake import OutOfSpace
        from agency.web.common import refusal_response

        if not is_out_of_space(exc):
            raise exc
        return refusal_response(OutOfSpace(), failure if request.path.startswith("/servlet")
                                else lambda status, message: json_error(status, message, code="out_of_space"))

    @app.errorhandler(SignInRefused)
    def sign_in_refused(exc: SignInRefused) -> Response:
        """Throttled sign-in (429) or every hash slot busy (503), with Retry-After."""
        from agency.web.common import refusal_response

        code = "too_many_failed_sign_ins" if exc.status == 429 else "unavailable"
        return refusal_response(exc, failure if request.path.startswith("/servlet")
                                else lambda status, message: json_error(status, message, code=code))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        if request.path.startswith("/v1") or request.path.startswith("/api"):
            return json_error(exc.code or 500, exc.description or exc.name)
        if request.path.startswith("/mds/"):
            from agency.web.mds import text

            return text(exc.code or 500, exc.description or exc.name)
        from agency.web.ui.errors import is_page_path, page_error

        if is_page_path(request.path):
            return page_error(exc)
        return exc

    @app.errorhandler(500)
    def server_error(exc) -> Response:
        from agency.web.ui.errors import is_page_path, page_error
        from werkzeug.exceptions import InternalServerError

        if is_page_path(request.path):
            return page_error(InternalServerError())
        return exc if isinstance(exc, HTTPException) else InternalServerError()


def _form_limit_message(exc: RequestEntityTooLarge, app: Flask) -> str | None:
    """What a multipart limit refusal was really about: werkzeug raises the same 413 for too many
    parts and for a too large form field as for a too large body; its parsers, where it raised, say which."""
    traceback, parsers = exc.__traceback__, []
    while traceback is not None:
        candidate = traceback.tb_frame.f_locals.get("self")
        if hasattr(candidate, "max_form_memory_size"):
            parsers.append(candidate)
        traceback = traceback.tb_next
    if not parsers:
        return None
    if any(getattr(p, "max_parts", None) is not None and getattr(p, "_parts_decoded", 0) > p.max_parts
           for p in parsers):
        return (f"The upload has too many parts (at most {app.config['MAX_FORM_PARTS']}): send one file "
                "and the few form fields it needs.")
    return (f"A form field is larger than the limit of {app.config['MAX_FORM_MEMORY_SIZE']} bytes: "
            "send the batch as a file part.")
