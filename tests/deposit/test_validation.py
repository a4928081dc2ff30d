"""Validation: hostile XML is harmless, broken XML is refused with errors a person can act on."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from agency.deposit.validation import (
    HOSTILE, INVALID, MALFORMED, OVER_LIMITS, UNSUPPORTED, DepositValidator, MarkupLimits, SchemaCatalog,
)
from batchgen import Article, deposit_xml

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
PROLOG = '<?xml version="1.0" encoding="UTF-8"?>'


@pytest.fixture(scope="module")
def validator():
    return DepositValidator(SchemaCatalog(SCHEMAS))


@pytest.fixture
def check(validator, tmp_path):
    def run(data: str | bytes):
        path = tmp_path / "batch.xml"
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return validator.check(path)
    return run


def valid_text() -> str:
    return deposit_xml([Article("10.5555/a")]).decode()


def test_valid_batch_is_accepted_with_its_head(check):
    verdict = check(deposit_xml([Article("10.5555/a")], batch_id="b-77", timestamp="20240102030405",
                                email="prod@example.org"))
    assert verdict.accepted
    assert verdict.head.doi_batch_id == "b-77"
    assert verdict.head.timestamp == "20240102030405"
    assert verdict.head.depositor_email == "prod@example.org"
    assert verdict.head.namespace == "http://www.crossref.org/schema/5.3.0"


def test_external_entity_is_refused_and_never_read(check):
    text = valid_text().replace(PROLOG, '<?xml version="1.0"?><!DOCTYPE doi_batch '
                                '[<!ENTITY xxe SYSTEM "file:///etc/passwd">]>').replace("A study of things", "&xxe;")
    verdict = check(text)
    assert verdict.kind == HOSTILE
    assert "DOCTYPE" in verdict.issues[0].message
    assert "root:" not in str(verdict.issues)


def test_entity_expansion_bomb_is_refused(check):
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10))
    text = valid_text().replace(PROLOG, f'<?xml version="1.0"?><!DOCTYPE lolz [{entities}]>').replace(
        "A study of things", "&lol9;")
    verdict = check(text)
    assert verdict.kind == HOSTILE


def test_external_dtd_is_refused_without_any_network_access(check):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    connections = []

    def accept():
        try:
            connections.append(listener.accept())
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    text = valid_text().replace(PROLOG, f'<?xml version="1.0"?><!DOCTYPE doi_batch SYSTEM '
                                        f'"http://127.0.0.1:{port}/evil.dtd">')
    verdict = check(text)
    thread.join()
    listener.close()
    assert verdict.kind == HOSTILE
    assert connections == []


def test_parameter_entities_are_refused(check):
    text = valid_text().replace(PROLOG, '<?xml version="1.0"?><!DOCTYPE doi_batch [<!ENTITY % p SYSTEM '
                                        '"file:///etc/passwd"> %p;]>')
    assert check(text).kind == HOSTILE


def test_excessive_depth_is_refused(check):
    deep = "<jats:p xmlns:jats='http://www.ncbi.nlm.nih.gov/JATS1'>" * 3000 + "</jats:p>" * 3000
    verdict = check(valid_text().replace("<pages>", deep + "<pages>"))
    assert verdict.kind == MALFORMED
    assert "depth" in verdict.issues[0].message.lower()


def test_huge_text_node_is_refused(tmp_path):
    """libxml2 refuses a text node over 10,000,000 bytes; with the default limits the body item
    holding it passes AGENCY_MAX_BODY_ITEM_BYTES (8 MiB) first, which is refused as over the limits."""
    path = tmp_path / "batch.xml"
    path.write_text(valid_text().replace("A study of things", "a" * 11_000_000))
    catalog = SchemaCatalog(SCHEMAS)
    by_default = DepositValidator(catalog).check(path)
    assert by_default.kind == OVER_LIMITS and "AGENCY_MAX_BODY_ITEM_BYTES" in by_default.issues[0].message
    verdict = DepositValidator(catalog, MarkupLimits(max_body_item_bytes=64 * 1024 * 1024)).check(path)
    assert verdict.kind == MALFORMED
    assert verdict.issues[0].line == 14


def test_not_well_formed_reports_line_and_column(check):
    text = valid_text().replace("</titles>", "</title>")
    verdict = check(text)
    assert verdict.kind == MALFORMED
    issue = verdict.issues[0]
    assert issue.line == 14 and issue.column
    assert "mismatch" in issue.message.lower()


def test_invalid_encoding_is_refused_with_position(check):
    verdict = check(valid_text().encode().replace(b"A study", b"A \xff\xfe study"))
    assert verdict.kind == MALFORMED
    assert verdict.issues[0].line == 14
    assert "encoding" in verdict.issues[0].message


def test_utf16_batch_is_accepted(check):
    text = valid_text().replace('encoding="UTF-8"', 'encoding="UTF-16"')
    assert check(text.encode("utf-16")).accepted


@pytest.mark.parametrize("data", [b"", b"   ", b'{"doi": "10.5555/x"}', b"<doi_batch"])
def test_non_xml_is_malformed(check, data):
    assert check(data).kind == MALFORMED


def test_schema_errors_list_every_error_with_line_and_readable_path(check):
    text = valid_text().replace("<doi_batch_id>batch-1</doi_batch_id>", "").replace(
        "<year>2024</year></publication_date>\n        <pages>", "<year>24x</year></publication_date>\n        <pages>")
    verdict = check(text)
    assert verdict.kind == INVALID
    paths = [(i.line, i.path) for i in verdict.issues]
    assert (5, "/doi_batch/head/timestamp") in paths
    assert (18, "/doi_batch/body/journal/journal_article/publication_date/year") in paths
    assert all(i.message for i in verdict.issues)


def test_unknown_namespace_is_refused(check):
    verdict = check(valid_text().replace("http://www.crossref.org/schema/5.3.0", "urn:example:other"))
    assert verdict.kind == UNSUPPORTED
    assert "urn:example:other" in verdict.issues[0].message


def test_no_namespace_is_invalid(check):
    assert check(b"<doi_batch><head/></doi_batch>").kind == INVALID


def test_root_other_than_doi_batch_is_refused(check):
    text = ('<journal_article xmlns="http://www.crossref.org/schema/5.3.0"><titles><title>x</title></titles>'
            '<doi_data><doi>10.5555/x</doi><resource>https://example.org/x</resource></doi_data></journal_article>')
    verdict = check(text)
    assert verdict.kind == INVALID
    assert "<doi_batch>" in verdict.issues[0].message


def test_resource_only_deposits_are_checked_against_the_resource_schema(check):
    text = valid_text().replace("http://www.crossref.org/schema/5.3.0",
                                "http://www.crossref.org/doi_resources_schema/4.4.2")
    verdict = check(text)
    assert verdict.kind == INVALID  # a full deposit's body is not a resource-only deposit's
    assert "journal" in verdict.issues[0].message


def test_resource_only_deposits_in_an_unknown_version_are_not_supported(check):
    text = valid_text().replace("http://www.crossref.org/schema/5.3.0",
                                "http://www.crossref.org/doi_resources_schema/4.9.9")
    verdict = check(text)
    assert verdict.kind == UNSUPPORTED
    assert "4.9.9" in verdict.issues[0].message and "4.4.2" in verdict.issues[0].message


def test_schema_location_is_never_fetched(check):
    text = valid_text().replace(
        'version="5.3.0">',
        'version="5.3.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation='
        '"http://www.crossref.org/schema/5.3.0 http://127.0.0.1:9/crossref5.3.0.xsd">')
    assert check(text).accepted


def test_large_files_are_validated_streaming(validator, tmp_path, monkeypatch):
    import agency.deposit.validation as validation

    monkeypatch.setattr(validation, "DETAILED_ERRORS_MAX_BYTES", 100)
    path = tmp_path / "big.xml"
    path.write_bytes(deposit_xml([Article(f"10.5555/s{i}") for i in range(50)], batch_id="stream"))
    verdict = validator.check(path)
    assert verdict.accepted and verdict.head.doi_batch_id == "stream"
    path.write_bytes(deposit_xml([Article("10.5555/s")]).replace(b"<year>2024</year></publication_date>\n"
                                                                 b"        <pages>",
                                                                 b"<year>x</year></publication_date>\n"
                                                                 b"        <pages>"))
    verdict = validator.check(path)
    assert verdict.kind == INVALID
    assert "'x'" in verdict.issues[0].message


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.97])
def test_truncated_files_are_malformed_at_any_size(validator, tmp_path, monkeypatch, cut):
    import agency.deposit.validation as validation

    data = deposit_xml([Article(f"10.5555/t{i}") for i in range(40)])
    path = tmp_path / "cut.xml"
    path.write_bytes(data[: int(len(data) * cut)])
    assert validator.check(path).kind == MALFORMED
    monkeypatch.setattr(validation, "DETAILED_ERRORS_MAX_BYTES", 10)
    verdict = validator.check(path)
    assert verdict.kind == MALFORMED
    assert verdict.issues[0].line


def test_tag_name_cache_stays_bounded_whatever_the_file_holds():
    """Extension content is open in the schemas: a file may carry any number of distinct tags."""
    from agency.deposit.validation import LOCAL_NAMES, local_name

    for n in range(3 * LOCAL_NAMES.LIMIT):
        assert local_name(f"{{urn:x}}tag{n}") == f"tag{n}"
    assert len(LOCAL_NAMES) <= LOCAL_NAMES.LIMIT
    assert local_name("{http://www.crossref.org/schema/5.3.0}doi") == "doi" and local_name(None) == ""
