"""Shared page assets."""

from __future__ import annotations

from flask import Blueprint, Response

from agency.web.common import agency

bp = Blueprint("pages", __name__)

OPENAPI_EXCLUDED = {"GET /static/style.css": "the pages' stylesheet",
                    "GET /static/tables.js": "the pages' table filter (progressive enhancement)"}


@bp.get("/static/style.css")
def stylesheet() -> Response:
    css = (agency().settings.template_dir / "pages" / "style.css").read_text()
    return Response(css, mimetype="text/css", headers={"Cache-Control": "max-age=3600"})


@bp.get("/static/tables.js")
def table_filter() -> Response:
    script = (agency().settings.template_dir / "pages" / "tables.js").read_text()
    return Response(script, mimetype="text/javascript", headers={"Cache-Control": "max-age=3600"})
