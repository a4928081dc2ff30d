"""The API description: complete (no undocumented route), served, rendered, and true of the running service."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest
import requests
from flask import Blueprint

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from live_server import agency_env, start_server  # noqa: E402

from agency.web import openapi


def test_every_route_is_described_or_excluded_with_a_reason(app):
    assert openapi.undocumented(app) == []
    assert openapi.stale(app) == []
    assert all(reason.strip() for reason in openapi.excluded(app).values())


def test_a_new_route_without_a_description_is_named_with_its_module(svc):
    from agency.app import create_app

    application = create_app(agency=svc)
    extra = Blueprint("extra", __name__)
    extra.add_url_rule("/v1/extras/<int:extra_id>", "show", lambda extra_id: "", methods=["GET", "DELETE"])
    application.register_blueprint(extra)
    missing = openapi.undocumented(application)
    assert missing == [f"DELETE /v1/extras/{{extra_id}} (declare it in OPENAPI_PATHS or OPENAPI_EXCLUDED of {__name__})",
                       f"GET /v1/extras/{{extra_id}} (declare it in OPENAPI_PATHS or OPENAPI_EXCLUDED of {__name__})"]


def test_description_is_openapi_3_1_with_resolvable_references(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    assert {"/v1/deposits", "/v1/queries", "/api/handles/{handle}", "/servlet/deposit"} <= set(document["paths"])
    text = response.get_data(as_text=True)
    for name in set(re.findall(r'"#/components/schemas/([^"]+)"', text)):
        assert name in document["components"]["schemas"], name
    import schemathesis

    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(item) for item in document["paths"].values())


def test_docs_page_shows_every_operation_without_outside_assets(client):
    document = client.get("/openapi.json").get_json()
    html = client.get("/docs").get_data(as_text=True)
    for path, item in document["paths"].items():
        for method in item:
            assert f"{method.upper()} {path}" in html.replace("&#34;", '"'), (method, path)
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing from a CDN


def _demo_credentials(output: list[str]) -> tuple[str, str]:
    match = re.search(r"demo account: login '([^']+)', password '([^']+)'", "".join(output))
    assert match, output
    return match.group(1), match.group(2)


CONFORMANCE_BUDGET_SECONDS = 600  # about 60 s on a quiet machine


@pytest.mark.slow
def test_running_service_matches_its_description(tmp_path, database_url):
    """Schemathesis sends generated requests to a live server and checks statuses, types and bodies.

    Bounded: a few examples per operation, a timeout on every request, and a time budget for the
    whole run (a slow service fails the test naming the operations it did not reach, never hangs CI).
    """
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis import checks

    # Generated callback URLs are not resolved (no DNS traffic) and never called (no scheduler).
    server = start_server(agency_env(tmp_path, database_url, AGENCY_RUN_SCHEDULER="0",
                                     AGENCY_CALLBACK_ALLOW_PRIVATE="1"), "--demo")
    try:
        credentials = _demo_credentials(server.output)
        schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
        chosen = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
                  checks.response_schema_conformance, checks.response_headers_conformance]
        failures, budget_ends = [], time.monotonic() + CONFORMANCE_BUDGET_SECONDS
        with requests.Session() as session:
            operations = [result.ok() for result in schema.get_all_operations()]
            for position, operation in enumerate(operations):
                if time.monotonic() > budget_ends:
                    left = ", ".join(f"{o.method.upper()} {o.path}" for o in operations[position:])
                    failures.append(f"time budget of {CONFORMANCE_BUDGET_SECONDS} s used up; not checked: {left}")
                    break

                @given(case=operation.as_strategy())
                @settings(max_examples=8, deadline=None, phases=[Phase.explicit, Phase.generate],
                          suppress_health_check=list(HealthCheck), database=None, derandomize=True)
                def check(case):
                    case.call_and_validate(base_url=server.url, session=session, checks=chosen,
                                           auth=credentials, timeout=15, allow_redirects=False)

                try:
                    check()
                except Exception as exc:  # collect every operation's failure, then report them together
                    failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
        assert not failures, "\n\n".join(failures)
    finally:
        server.stop()
