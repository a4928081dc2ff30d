"""The 5.5.0 contributor-role rules (XSD 1.1 in Crossref's schema) and the per-record DOI length.

The role rules are checked right after XSD validation, in the same streaming pass, and
refuse the file like a schema error: kind "invalid", with line, element path and message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agency.deposit.schema_rules import MAX_REPORTED_BREAKS, ContributorRoleRules
from agency.deposit.validation import INVALID, UNSUPPORTED, DepositValidator, SchemaCatalog
from agency.handles.doi_syntax import MAX_DOI_LENGTH
from batchgen import Article, deposit_xml, grant_xml
from conftest import basic_headers

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@pytest.fixture(scope="module")
def validator():
    return DepositValidator(SchemaCatalog(SCHEMAS))


@pytest.fixture
def check(validator, tmp_path):
    def run(data: bytes):
        path = tmp_path / "batch.xml"
        path.write_bytes(data)
        return validator.check(path)
    return run


def with_contributors(people: str, version: str = "5.5.0") -> bytes:
    """A one-article deposit whose contributors are ``people``."""
    text = deposit_xml([Article("10.5555/r0")], version=version).decode()
    start, end = text.index("<contributors>"), text.index("</contributors>")
    return (text[:start] + f"<contributors>{people}" + text[end:]).encode()


PERSON = ('<person_name sequence="first"{attrs}><given_name>Ann</given_name><surname>Smith</surname>{roles}'
          "</person_name>")


def person(attrs: str = "", roles: str = "") -> str:
    return PERSON.format(attrs=attrs, roles=roles)


@pytest.mark.parametrize("people", [
    person(' contributor_role="author"'),
    person(roles='<role type="author" vocab="crossref"/>'),
    person(roles='<role type="author"/><role type="corresponding-author" vocab="crossref"/>'),
    person(roles='<role type="writing-original-draft" vocab="credit"/>'),
    person(' contributor_role="editor"', '<role type="conceptualization" vocab="credit"/>'),
], ids=["contributor_role", "crossref role", "two roles, default vocab", "CRediT role", "both"])
def test_5_5_0_contributors_with_a_role_are_accepted(check, people):
    verdict = check(with_contributors(people))
    assert verdict.accepted, verdict.issues


@pytest.mark.parametrize("people, message", [
    (person(), "neither a contributor_role attribute nor a <role> element"),
    (person(roles='<role type="lead-author" vocab="crossref"/>'), "role type 'lead-author' is not a crossref role"),
    (person(roles='<role type="author" vocab="credit"/>'), "role type 'author' is not a credit role"),
    (person(roles='<role type="author" vocab="marc"/>'), "role vocab 'marc' is not one"),
    (person(roles='<role vocab="crossref"/>'), "role type '' is not a crossref role"),
], ids=["no role at all", "unknown crossref type", "crossref type under credit", "unknown vocab", "no type"])
def test_5_5_0_role_rules_refuse_like_a_schema_error(check, people, message):
    verdict = check(with_contributors(people))
    assert verdict.kind == INVALID
    [issue] = verdict.issues
    assert message in issue.message
    assert issue.line and issue.line > 1
    assert issue.path.startswith("/doi_batch/body/journal[1]/journal_article/contributors/")


def test_the_path_names_the_body_item_and_the_person(check):
    people = person(' contributor_role="author"') + person().replace('"first"', '"additional"')
    text = with_contributors(people).decode()
    journal = text[text.index("<journal>"):text.index("</journal>") + len("</journal>")]
    text = text.replace(journal, journal + journal.replace("10.5555/r0", "10.5555/r1"))
    verdict = check(text.encode())
    assert [issue.path for issue in verdict.issues] == [
        "/doi_batch/body/journal[1]/journal_article/contributors/person_name[2]",
        "/doi_batch/body/journal[2]/journal_article/contributors/person_name[2]",
    ]
    assert verdict.issues[0].line < verdict.issues[1].line


def test_before_5_5_0_the_schema_itself_requires_contributor_role(check):
    assert ContributorRoleRules.for_namespace("http://www.crossref.org/schema/5.4.0") is None
    verdict = check(with_contributors(person(), version="5.4.0"))
    assert verdict.kind == INVALID
    assert "contributor_role" in verdict.issues[0].message
    assert verdict.issues[0].path.endswith("/contributors/person_name")
    assert check(with_contributors(person(' contributor_role="author"'), version="5.4.0")).accepted


def test_reported_breaks_are_bounded(check):
    verdict = check(with_contributors(person() * (MAX_REPORTED_BREAKS + 50)))
    assert verdict.kind == INVALID
    assert len(verdict.issues) == MAX_REPORTED_BREAKS


def test_xsd_errors_come_before_the_rules(check):
    data = with_contributors(person()).replace(b"<year>2024</year>", b"<year>24</year>", 1)
    verdict = check(data)
    assert verdict.kind == INVALID
    assert "year" in verdict.issues[0].message and "contributor_role" not in str(verdict.issues)


def test_a_doi_over_the_limit_fails_its_record_not_the_batch(svc, deposit):
    long_doi = "10.5555/" + "x" * (MAX_DOI_LENGTH - len("10.5555/") + 1)
    body, records = deposit(deposit_xml([Article("10.5555/ok"), Article(long_doi, url="https://example.org/l"),
                                         Article("10.5555/ok2")]))
    assert body["status"] == "completed"
    assert [r["status"] for r in records] == ["Success", "Failure", "Success"]
    assert f"{MAX_DOI_LENGTH + 1} characters long; at most {MAX_DOI_LENGTH}" in records[1]["msg"]
    assert body["counts"]["failure_count"] == 1 and body["counts"]["success_count"] == 2


@pytest.mark.parametrize("namespace", ["http://www.crossref.org/schema/4.3.8", "http://www.crossref.org/grant_id/0.0.1",
                                       "http://www.crossref.org/grant_id/0.1.0"])
def test_namespaces_crossref_publishes_are_known(check, namespace):
    version = namespace.rsplit("/", 1)[-1]
    grant = "grant_id" in namespace
    data = grant_xml(version).encode() if grant else deposit_xml([Article("10.5555/v")], version=version)
    verdict = check(data)
    assert verdict.accepted, verdict.issues
    assert verdict.head.namespace == namespace


def test_a_namespace_crossref_does_not_publish_is_refused(check):
    verdict = check(deposit_xml([Article("10.5555/v")], version="4.3.9"))
    assert verdict.kind == UNSUPPORTED
    assert "4.3.9" in verdict.issues[0].message



def test_a_broken_role_rule_is_refused_over_http_like_a_schema_error(client, alice):
    data = with_contributors(person(roles='<role type="lead-author"/>'))
    response = client.post("/v1/deposits", data=data, headers=basic_headers("alice", "alice-password"))
    assert response.status_code == 422
    body = response.get_json()
    assert body["status"] == "refused" and body["refusal"]["kind"] == "invalid"
    [error] = body["refusal"]["errors"]
    assert error["line"] and error["path"].endswith("/contributors/person_name/role")
    assert "role type 'lead-author'" in error["message"]
