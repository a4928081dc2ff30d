"""The home page: what this service is, a box that resolves a DOI, links to the API documentation and sign-in."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, current_app, redirect, render_template, request

from agency.web.common import agency

bp = Blueprint("home", __name__)
PAGE = "the home page and its resolve form, for people (the API resolves at GET /{doi})"
OPENAPI_EXCLUDED = {route: PAGE for route in (
    "GET /",
    "GET /resolve",
)}


@bp.get("/")
def index() -> str:
    return render_template("pages/ui/home.html.j2", title="agency: DOI registration",
                           base_url=request.host_url.rstrip("/"))


@bp.get("/resolve")
def resolve() -> Response:
    """The home page's form (GET, so it works without JavaScript): on to /{doi}."""
    doi = (request.args.get("doi") or "").strip()
    for lead in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "doi:"):
        if doi.lower().startswith(lead):
            doi = doi[len(lead):]
    if not doi:
        return redirect("/")
    return redirect("/" + quote(doi.lstrip("/"), safe="/:;()[]@!$&'*+,="))


def api_docs_url() -> str | None:
    """/docs when the OpenAPI blueprint is installed (issue: OpenAPI), else None: the home page lists the endpoints."""
    return "/docs" if any(rule.rule == "/docs" for rule in current_app.url_map.iter_rules()) else None


@bp.app_context_processor
def layout_values() -> dict:
    return {"api_docs_url": api_docs_url, "service_name": "agency",
            "max_upload_mb": agency().settings.max_batch_bytes // (1024 * 1024)}
