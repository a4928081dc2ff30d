"""Bad DataCite records are refused with a message that says what to fix."""

from __future__ import annotations

import pytest

from agency.config import load_settings
from agency.datacite.kernel4 import KERNEL4, MAX_METADATA_BYTES, Kernel4Schema, MetadataRefused, read_record
from dcgen import record_xml

SCHEMA = Kernel4Schema(load_settings().schema_dir)


def refusal(body: bytes, expected_doi: str | None = None) -> MetadataRefused:
    with pytest.raises(MetadataRefused) as refused:
        read_record(body, SCHEMA, expected_doi)
    return refused.value


def test_minimal_record_is_read():
    record = read_record(record_xml(), SCHEMA, "10.5555/DC-1")
    assert (record.doi, record.titles, record.publisher, record.publication_year) == \
        ("10.5555/dc-1", ["A data set"], "Agency Press", 2024)
    assert record.creators[0].given_name == "Jane"


def test_open_properties_take_any_content():
    extra = "<subjects><subject subjectScheme='x'>a</subject><futureThing/></subjects><version>2</version>"
    assert read_record(record_xml(extra=extra), SCHEMA).doi == "10.5555/dc-1"


def test_not_well_formed_gives_line():
    refused = refusal(b"<resource xmlns='http://datacite.org/schema/kernel-4'><identifier></resource>")
    assert refused.status == 400 and "well-formed" in refused.message and refused.issues[0].line == 1


def test_doctype_refused():
    body = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]>' + record_xml().split(b"?>", 1)[1]
    assert "DOCTYPE" in refusal(body).message


def test_kernel3_refused_with_how_to_convert():
    message = refusal(record_xml(namespace="http://datacite.org/schema/kernel-3")).message
    assert "kernel-3" in message and "Convert it to kernel-4" in message


def test_unknown_namespace_refused():
    message = refusal(record_xml(namespace="http://example.org/other")).message
    assert "http://example.org/other" in message and KERNEL4 in message


def test_schema_errors_have_lines_and_paths():
    refused = refusal(record_xml(resource_type='<resourceType resourceTypeGeneral="Movie">x</resourceType>'))
    assert refused.status == 422
    assert refused.issues[0].line == 9 and refused.issues[0].path == "/resource/resourceType"
    assert "Movie" in refused.issues[0].message


def test_missing_required_property():
    refused = refusal(record_xml(resource_type=""))
    assert refused.status == 422 and "resourceType" in str(refused)


def test_identifier_must_equal_the_doi():
    message = refusal(record_xml(), expected_doi="10.5555/other").message
    assert "10.5555/dc-1" in message and "10.5555/other" in message


def test_identifier_that_is_not_a_doi():
    assert refusal(record_xml(doi="not a doi")).status == 422


def test_over_one_megabyte_refused():
    body = record_xml(extra="<descriptions><description>" + "x" * MAX_METADATA_BYTES + "</description></descriptions>")
    refused = refusal(body)
    assert refused.status == 413 and str(MAX_METADATA_BYTES) in refused.message


def test_empty_body():
    assert "empty" in refusal(b"  ").message
