"""Every real DataCite kernel-4 record in ../shared/corpus/datacite is read by our schema, or refused for a stated reason."""

from __future__ import annotations

import pytest

from agency.config import load_settings
from agency.datacite.kernel4 import Kernel4Schema, MetadataRefused, read_record
from conftest import corpus_dir

# Records the corpus holds that are not registrable as they stand, and why.
REFUSED = {
    # EZID's template: the identifier is a placeholder sentence, not a DOI.
    "ezid__datacite_metadata__kernel-4.xml": "identifier",
}


def _records():
    return sorted(p for p in corpus_dir("datacite").iterdir() if p.suffix == ".xml")


def test_corpus_records_are_read_with_their_fields():
    schema = Kernel4Schema(load_settings().schema_dir)
    seen = 0
    for path in _records():
        body = path.read_bytes()
        if path.name in REFUSED:
            with pytest.raises(MetadataRefused) as refused:
                read_record(body, schema)
            assert REFUSED[path.name] in str(refused.value)
            continue
        record = read_record(body, schema)
        seen += 1
        assert record.doi.startswith("10.") and "/" in record.doi, path.name
        assert record.creators and all(c.name for c in record.creators), path.name
        assert record.titles and all(record.titles), path.name
        assert record.publisher, path.name
        assert 1000 <= record.publication_year <= 2100, path.name
        assert record.resource_type_general, path.name
        # the identifier in the path must be the one in the XML, in any case
        assert read_record(body, schema, expected_doi=record.doi.upper()).doi == record.doi
    assert seen >= 7


def test_full_example_fields():
    path = corpus_dir("datacite") / "bolognese__datacite-example-full-v4.6.xml"
    record = read_record(path.read_bytes(), Kernel4Schema(load_settings().schema_dir))
    assert record.doi == "10.82433/B09Z-4K37"
    assert record.creators[0].family_name == "ExampleFamilyName"
    assert record.creators[0].name_type == "Personal"
    assert record.resource_type_general == "Project"  # new in 4.6
    assert {r.relation_type for r in record.related_identifiers} >= {"References", "HasTranslation", "IsTranslationOf"}
    assert record.dates and all(kind for kind, _ in record.dates)
