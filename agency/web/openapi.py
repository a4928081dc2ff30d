"""The OpenAPI 3.1 description of the HTTP API, assembled from what each blueprint declares beside its routes.

A blueprint module describes its own routes, so adding a route is a change in
one file. It may define:

* ``OPENAPI_PATHS``: OpenAPI path items keyed by path template (``/v1/deposits/{submission_id}``),
  built with the helpers below (``operation``, ``json_response``, ``errors``...);
* ``OPENAPI_SCHEMAS``: component schemas its operations refer to with ``ref(name)``;
* ``OPENAPI_EXCLUDED``: ``"GET /path"`` -> why that route is not part of the API (pages, probes).

``describe(app)`` merges the fragments of every registered blueprint;
``undocumented(app)`` names each route that neither describes nor excludes it,
and the module to declare it in (tests/web/test_openapi.py fails on any).
"""

from __future__ import annotations

import re
import sys
from typing import Iterable

from flask import Flask

OPENAPI_VERSION = "3.1.0"
IGNORED_METHODS = {"HEAD", "OPTIONS"}
_RULE_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")

ERROR_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "description": "stable, machine-readable (e.g. not_found, too_many_pending)"},
            "message": {"type": "string", "description": "what went wrong and what to do, for people"},
            "details": {"type": "object", "description": "facts about this error (limits, links, errors)"},
        },
    }},
}
SHARED_SCHEMAS = {"Error": ERROR_SCHEMA}
ERROR_DESCRIPTIONS = {
    400: "Bad request", 401: "Login and password missing or wrong (HTTP Basic)", 404: "Not found for this account",
    406: "No representation in the requested type", 409: "Not ready yet", 413: "Too large",
    415: "Content type not accepted", 422: "Not acceptable content", 429: "Too many pending submissions",
    503: "Temporarily unavailable",
}


# -- building fragments --------------------------------------------------------------------
def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(description: str, schema: dict, headers: dict | None = None) -> dict:
    response = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def content_response(description: str, *media_types: str, headers: dict | None = None) -> dict:
    response: dict = {"description": description,
                      "content": {t: {"schema": {"type": "string"}} for t in media_types}}
    if headers:
        response["headers"] = headers
    return response


def header(description: str, schema_type: str = "string") -> dict:
    return {"description": description, "schema": {"type": schema_type}}


def errors(*statuses: int) -> dict:
    """JSON error answers ({"error": {code, message, details}}) for these statuses."""
    return {str(s): json_response(ERROR_DESCRIPTIONS.get(s, "Error"), ref("Error")) for s in statuses}


def path_param(name: str, schema: dict | None = None, description: str = "") -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"},
            "description": description}


def query_param(name: str, schema: dict | None = None, description: str = "", required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema or {"type": "string"},
            "description": description}


def operation(summary: str, responses: dict, *, tags: Iterable[str], parameters: Iterable[dict] = (),
              body: dict | None = None, basic_auth: bool = True, description: str = "",
              operation_id: str | None = None) -> dict:
    """One operation; ``basic_auth`` False for public reads and the servlets (credentials in fields)."""
    op: dict = {"summary": summary, "tags": list(tags), "responses": responses}
    if description:
        op["description"] = description
    if operation_id:
        op["operationId"] = operation_id
    params = list(parameters)
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = body
    op["security"] = [{"basic": []}] if basic_auth else []
    return op


def request_body(*media_types: str, schema: dict | None = None, required: bool = True) -> dict:
    return {"required": required,
            "content": {t: {"schema": schema or {"type": "string"}} for t in media_types}}


# -- assembling -------------------------------------------------------------------------------
def _modules(app: Flask) -> list:
    """The modules of the registered blueprints, in registration order."""
    seen, modules = set(), []
    for blueprint in app.blueprints.values():
        module = sys.modules.get(blueprint.import_name)
        if module is not None and module.__name__ not in seen:
            seen.add(module.__name__)
            modules.append(module)
    return modules


def describe(app: Flask, server_url: str | None = None) -> dict:
    """The whole description: every blueprint's paths and schemas merged over the shared parts."""
    paths: dict = {}
    schemas: dict = dict(SHARED_SCHEMAS)
    for module in _modules(app):
        for path, item in getattr(module, "OPENAPI_PATHS", {}).items():
            paths.setdefault(path, {}).update(item)
        schemas.update(getattr(module, "OPENAPI_SCHEMAS", {}))
    document = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "agency", "version": "1",
                 "description": "A DOI Registration Agency: Crossref-style deposits and queries, the "
                                "Handle.Net REST API, DOI resolution. Errors under /v1 are "
                                '{"error": {"code", "message", "details"}}; the servlets answer as '
                                "Crossref's do."},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas,
                       "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}}},
    }
    if server_url:
        document["servers"] = [{"url": server_url}]
    return document


def openapi_path(rule: str) -> str:
    """A Werkzeug rule as an OpenAPI path template: ``/v1/deposits/<int:submission_id>`` -> ``/v1/deposits/{submission_id}``."""
    return _RULE_ARGUMENT.sub(r"{\1}", rule)


def routes(app: Flask) -> dict[str, str]:
    """``"METHOD /path"`` -> the module declaring the route's blueprint, for every route of the app."""
    found = {}
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.rpartition(".")[0]
        owner = app.blueprints[blueprint].import_name if blueprint in app.blueprints else "agency.app"
        for method in sorted((rule.methods or set()) - IGNORED_METHODS):
            found[f"{method} {openapi_path(rule.rule)}"] = owner
    return found


APP_EXCLUDED = {"GET /static/{filename}": "Flask's static files (none are served by the API)"}


def excluded(app: Flask) -> dict[str, str]:
    found = dict(APP_EXCLUDED)
    for module in _modules(app):
        found.update(getattr(module, "OPENAPI_EXCLUDED", {}))
    return found


def documented(app: Flask) -> set[str]:
    return {f"{method.upper()} {path}" for path, item in describe(app)["paths"].items()
            for method in item if method.upper() not in ("PARAMETERS", "SUMMARY", "DESCRIPTION")}


def undocumented(app: Flask) -> list[str]:
    """Each route neither described nor excluded, with the module where it should be declared."""
    known = documented(app) | set(excluded(app))
    return [f"{route} (declare it in OPENAPI_PATHS or OPENAPI_EXCLUDED of {module})"
            for route, module in sorted(routes(app).items()) if route not in known]


def stale(app: Flask) -> list[str]:
    """Operations described or excluded for which the app has no route."""
    present = set(routes(app))
    return sorted((documented(app) | set(excluded(app))) - present)
