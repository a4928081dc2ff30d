"""The Flask application factory: builds the agency and registers its blueprints."""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from agency.config import Settings, load_settings
from agency.services import Agency, build_agency
from agency.templating import TEMPLATE_OPTIONS

MULTIPART_OVERHEAD = 1024 * 1024


def create_app(settings: Settings | None = None, agency: Agency | None = None,
               start_background: bool = False) -> Flask:
    settings = settings or (agency.settings if agency else load_settings())
    agency = agency or build_agency(settings)
    app = Flask(__name__, template_folder=str(settings.template_dir))
    app.jinja_options = {**app.jinja_options, **TEMPLATE_OPTIONS}  # Flask's autoescape misses *.html.j2
    app.config["MAX_CONTENT_LENGTH"] = settings.max_batch_bytes + MULTIPART_OVERHEAD
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

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_exc) -> Response:
        limit = app.extensions["agency"].settings.max_batch_bytes
        message = f"The request is larger than the limit of {limit} bytes; split the batch."
        if request.path.startswith("/servlet"):
            return failure(413, message)
        return json_error(413, message)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        if request.path.startswith("/v1") or request.path.startswith("/api"):
            return json_error(exc.code or 500, exc.description or exc.name)
        if request.path.startswith("/mds/"):
            from agency.web.mds import text

            return text(exc.code or 500, exc.description or exc.name)
        return exc
