"""Shared page assets."""

from __future__ import annotations

from flask import Blueprint, Response

from agency.web.common import agency

bp = Blueprint("pages", __name__)

OPENAPI_EXCLUDED = {"GET /static/style.css": "the pages' stylesheet"}


@bp.get("/static/style.css")
def stylesheet() -> Response:
    css = (agency().settings.template_dir / "pages" / "style.css").read_text()
    return Response(css, mimetype="text/css", headers={"Cache-Control": "max-age=3600"})
