"""The API's own description: ``/openapi.json`` (OpenAPI 3.1) and ``/docs``, a page rendered from it here (no CDN)."""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, render_template

from agency.web import openapi
from agency.web.common import base_url

bp = Blueprint("api_docs", __name__)

OPENAPI_PATHS = {
    "/openapi.json": {"get": openapi.operation(
        "This description (OpenAPI 3.1)", {"200": openapi.json_response("The description", {"type": "object"})},
        tags=["Documentation"], basic_auth=False)},
}
OPENAPI_EXCLUDED = {"GET /docs": "a page for people, rendered from /openapi.json"}
METHOD_ORDER = ("get", "put", "post", "delete", "patch")


@bp.get("/openapi.json")
def description() -> Response:
    body = json.dumps(openapi.describe(current_app, base_url()), ensure_ascii=False, indent=1)
    response = Response(body, mimetype="application/json")
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/docs")
def page() -> Response:
    document = openapi.describe(current_app, base_url())
    by_tag: dict[str, list] = {}
    for path, item in document["paths"].items():
        for method in METHOD_ORDER:
            if method in item:
                op = item[method]
                by_tag.setdefault((op.get("tags") or ["Other"])[0], []).append((method.upper(), path, op))
    schemas = {name: json.dumps(schema, indent=1, ensure_ascii=False)
               for name, schema in document["components"]["schemas"].items()}
    html = render_template("pages/api_docs.html.j2", info=document["info"], by_tag=by_tag, schemas=schemas)
    return Response(html, mimetype="text/html")
