"""Tests for our own Crossref-style deposit schemas under schemas/crossref/.

* every XSD compiles in lxml (libxml2) and loads in xmlschema;
* catalog.json maps each namespace to an existing wrapper of that namespace;
* the shared corpus (../shared/corpus/crossref-deposit, with EXPECTED.tsv)
  is accepted/refused as expected, with the expected number of records;
* small hand-written documents: a minimal valid journal_article deposit and
  one mutation of it per rule that must make it invalid.
"""

from __future__ import annotations

import copy
import csv
import json
from functools import lru_cache
from pathlib import Path

import pytest
import xmlschema
from batchgen import GRANT_DOI_DATA, grant_xml
from corpus_expectations import expected_row
from lxml import etree

REPO = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO / "schemas" / "crossref"
CATALOG_PATH = SCHEMA_DIR / "catalog.json"
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus" / "crossref-deposit"
EXPECTED = CORPUS / "EXPECTED.tsv"

DEPOSIT_VERSIONS = (
    "4.3.0 4.3.1 4.3.2 4.3.3 4.3.4 4.3.5 4.3.6 4.3.7 4.3.8 4.4.0 4.4.1 4.4.2 "
    "4.8.0 4.8.1 5.0.0 5.1.0 5.2.0 5.3.0 5.3.1 5.4.0 5.5.0"
).split()
GRANT_VERSIONS = "0.0.1 0.0.2 0.1.0 0.1.1 0.2.0".split()
GRANT_NS = "http://www.crossref.org/grant_id/0.1.1"
# Chameleon parts (no namespace of their own): compiled only through a wrapper.
INCLUDED_PARTS = {"deposit-core.xsd", "grant-core.xsd", "email-pattern.xsd", "email-length.xsd",
                  "contributor-role-required.xsd", "contributor-role-optional.xsd"}


def hardened_parser() -> etree.XMLParser:
    """The parser used for untrusted deposits: no entities, no DTD, no network."""
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )


def load_catalog() -> dict[str, str]:
    return json.loads(CATALOG_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def lxml_schema(filename: str) -> etree.XMLSchema:
    # Parse from the file path so that the relative xs:include of
    # deposit-core.xsd resolves next to the wrapper, on the local disk.
    return etree.XMLSchema(etree.parse(str(SCHEMA_DIR / filename)))


def schema_for(root: etree._Element) -> etree.XMLSchema | None:
    """Pick the schema as application code will: by the root's namespace,
    and only for a <doi_batch> root.  None means "not a supported deposit"."""
    qname = etree.QName(root)
    if qname.localname != "doi_batch":
        return None
    filename = load_catalog().get(qname.namespace or "")
    if filename is None:
        return None
    return lxml_schema(filename)


def count_records(root: etree._Element) -> int:
    """doi_data/doi elements, plus the bare doi of pending_publication."""
    ns = etree.QName(root).namespace
    return len(
        root.xpath(
            "//c:doi_data/c:doi | //c:pending_publication/c:doi",
            namespaces={"c": ns},
        )
    )


# --------------------------------------------------------------------------
# Compilation and catalog
# --------------------------------------------------------------------------

ALL_XSDS = sorted(p for p in SCHEMA_DIR.glob("*.xsd") if p.name not in INCLUDED_PARTS)


def test_schema_files_present():
    names = {p.name for p in SCHEMA_DIR.glob("*.xsd")}
    expected = {f"crossref{v}.xsd" for v in DEPOSIT_VERSIONS}
    expected |= {f"grant_id{v}.xsd" for v in GRANT_VERSIONS} | INCLUDED_PARTS
    assert expected <= names, sorted(expected - names)


@pytest.mark.parametrize("path", ALL_XSDS, ids=lambda p: p.name)
def test_xsd_compiles_in_lxml(path: Path):
    etree.XMLSchema(etree.parse(str(path)))


@pytest.mark.parametrize("path", ALL_XSDS, ids=lambda p: p.name)
def test_xsd_loads_in_xmlschema(path: Path):
    schema = xmlschema.XMLSchema(str(path))
    if path.name.startswith("crossref"):
        version = path.name[len("crossref") : -len(".xsd")]
        assert schema.target_namespace == f"http://www.crossref.org/schema/{version}"
        # the chameleon include really brought the declarations in
        doi_batch = schema.elements["doi_batch"]
        assert doi_batch.qualified_name == f"{{{schema.target_namespace}}}doi_batch"


def test_catalog_maps_every_namespace_to_its_wrapper():
    catalog = load_catalog()
    expected_ns = {f"http://www.crossref.org/schema/{v}" for v in DEPOSIT_VERSIONS}
    expected_ns |= {f"http://www.crossref.org/grant_id/{v}" for v in GRANT_VERSIONS}
    assert set(catalog) == expected_ns
    for namespace, filename in catalog.items():
        path = SCHEMA_DIR / filename
        assert path.is_file(), filename
        assert "/" not in filename and "\\" not in filename
        xsd_root = etree.parse(str(path)).getroot()
        assert xsd_root.get("targetNamespace") == namespace, filename
    # the included parts are never catalog targets: they have no namespace of their own
    for part in INCLUDED_PARTS:
        assert part not in catalog.values()
        assert etree.parse(str(SCHEMA_DIR / part)).getroot().get("targetNamespace") is None


def test_wrapper_names_match_schema_location_basenames():
    # xsi:schemaLocation hints end in e.g. ".../crossref5.3.0.xsd"; the
    # basename is the wrapper's file name (the hint itself is never fetched).
    catalog = load_catalog()
    for version in DEPOSIT_VERSIONS:
        assert catalog[f"http://www.crossref.org/schema/{version}"] == f"crossref{version}.xsd"
    for version in GRANT_VERSIONS:
        assert catalog[f"http://www.crossref.org/grant_id/{version}"] == f"grant_id{version}.xsd"


# --------------------------------------------------------------------------
# The shared corpus
# --------------------------------------------------------------------------


def _corpus_rows():
    if not EXPECTED.is_file():
        return [pytest.param(None, id="corpus-absent")]
    with EXPECTED.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [pytest.param(expected_row(row), id=row["file"]) for row in rows]


@pytest.mark.parametrize("row", _corpus_rows())
def test_corpus_file(row):
    if row is None:
        pytest.skip(f"../shared corpus not present: {CORPUS}")
    path = CORPUS / row["file"]
    outcome = row["outcome"]

    if outcome == "refuse" and "not well-formed" in row["note"]:
        with pytest.raises(etree.XMLSyntaxError):
            etree.parse(str(path), hardened_parser())
        return

    doc = etree.parse(str(path), hardened_parser())
    root = doc.getroot()
    schema = schema_for(root)

    if outcome == "accept":
        assert schema is not None, f"no catalog entry for {root.tag}"
        valid = schema.validate(doc)
        assert valid, "\n".join(str(e) for e in schema.error_log)
        assert count_records(root) == int(row["records"])
    elif outcome == "refuse":
        assert schema is None or not schema.validate(doc), (
            "a file expected to be refused validated"
        )
    elif outcome == "accept-resources":
        # doi_resources deposits are refused in code as "not supported":
        # there is deliberately no schema for them.
        assert schema is None
    else:  # pragma: no cover - a new outcome needs a decision here
        pytest.fail(f"unknown outcome {outcome!r}")


# --------------------------------------------------------------------------
# Hand-written documents
# --------------------------------------------------------------------------

NS_530 = "http://www.crossref.org/schema/5.3.0"

TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<doi_batch xmlns="{ns}" version="5.3.0"
           xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
           xmlns:jats="http://www.ncbi.nlm.nih.gov/JATS1"
           xmlns:ai="http://www.crossref.org/AccessIndicators.xsd">
  <head>
    <doi_batch_id>batch-0001</doi_batch_id>
    <timestamp>20240101120000</timestamp>
    <depositor>
      <depositor_name>Example Press</depositor_name>
      <email_address>deposits@example.org</email_address>
    </depositor>
    <registrant>Example Press</registrant>
  </head>
  <body>
    <journal>
      <journal_metadata language="en">
        <full_title>Journal of Examples</full_title>
        <abbrev_title>J. Ex.</abbrev_title>
        <issn media_type="electronic">1234-567X</issn>
      </journal_metadata>
      <journal_issue>
        <publication_date media_type="online">
          <month>01</month><day>02</day><year>2024</year>
        </publication_date>
        <journal_volume><volume>7</volume></journal_volume>
        <issue>3</issue>
      </journal_issue>
      <journal_article publication_type="full_text">
        <titles><title>An example article</title></titles>
        <contributors>
          <person_name sequence="first" contributor_role="author">
            <given_name>Ada</given_name>
            <surname>Lovelace</surname>
            <ORCID authenticated="true">https://orcid.org/0000-0002-1825-0097</ORCID>
          </person_name>
        </contributors>
        <jats:abstract><jats:p>Foreign-namespace content is skipped.</jats:p></jats:abstract>
        <publication_date media_type="online">
          <month>01</month><day>02</day><year>2024</year>
        </publication_date>
        <pages><first_page>1</first_page><last_page>9</last_page></pages>
        <crossmark><anything><goes/></anything>
          <custom_metadata><ai:program name="AccessIndicators"/></custom_metadata></crossmark>
        <doi_data>
          <doi>10.5555/example.1</doi>
          <resource>https://example.org/articles/1</resource>
        </doi_data>
        <citation_list><citation key="r1"><doi>10.1038/nature12373</doi><cYear>2013</cYear></citation></citation_list>
      </journal_article>
    </journal>
  </body>
</doi_batch>
"""


def template_doc(ns: str = NS_530) -> etree._ElementTree:
    data = TEMPLATE.format(ns=ns).encode("utf-8")
    return etree.ElementTree(etree.fromstring(data, hardened_parser()))


def find(doc: etree._ElementTree, path: str) -> etree._Element:
    ns = etree.QName(doc.getroot()).namespace
    found = doc.getroot().find(path, namespaces={"c": ns, "jats": "http://www.ncbi.nlm.nih.gov/JATS1"})
    assert found is not None, path
    return found


def is_valid(doc: etree._ElementTree) -> bool:
    schema = schema_for(doc.getroot())
    assert schema is not None
    return schema.validate(doc)


def test_template_is_valid():
    doc = template_doc()
    schema = schema_for(doc.getroot())
    assert schema.validate(doc), "\n".join(str(e) for e in schema.error_log)
    assert count_records(doc.getroot()) == 1


@pytest.mark.parametrize("version", DEPOSIT_VERSIONS)
def test_template_is_valid_in_every_deposit_namespace(version):
    doc = template_doc(f"http://www.crossref.org/schema/{version}")
    assert is_valid(doc)


def test_template_also_valid_in_xmlschema():
    doc = template_doc()
    schema = xmlschema.XMLSchema(str(SCHEMA_DIR / "crossref5.3.0.xsd"))
    assert schema.is_valid(etree.tostring(doc).decode("utf-8"))


def _remove(doc, path):
    el = find(doc, path)
    el.getparent().remove(el)


def _set_text(doc, path, text):
    find(doc, path).text = text


def _mut_missing_doi_batch_id(doc):
    _remove(doc, "c:head/c:doi_batch_id")


def _mut_head_timestamp_letters(doc):
    _set_text(doc, "c:head/c:timestamp", "2024010112000a")


def _mut_head_timestamp_20_digits(doc):
    _set_text(doc, "c:head/c:timestamp", "1" * 20)


def _mut_doi_data_without_doi(doc):
    _remove(doc, ".//c:journal_article/c:doi_data/c:doi")


def _mut_journal_article_without_doi_data(doc):
    _remove(doc, ".//c:journal_article/c:doi_data")


def _mut_bad_issn(doc):
    _set_text(doc, ".//c:journal_metadata/c:issn", "1234-56789")


def _mut_bad_year(doc):
    _set_text(doc, ".//c:journal_article/c:publication_date/c:year", "24")


def _mut_unknown_element_in_head(doc):
    head = find(doc, "c:head")
    ns = etree.QName(head).namespace
    head.insert(2, etree.Element(f"{{{ns}}}bogus"))


def _mut_empty_body(doc):
    body = find(doc, "c:body")
    for child in list(body):
        body.remove(child)


def _mut_doi_data_without_resource(doc):
    _remove(doc, ".//c:journal_article/c:doi_data/c:resource")


def _mut_empty_doi(doc):
    _set_text(doc, ".//c:journal_article/c:doi_data/c:doi", "")


def _mut_missing_depositor(doc):
    _remove(doc, "c:head/c:depositor")


def _move_before(doc, path, before_path):
    element = find(doc, path)
    element.getparent().remove(element)
    find(doc, before_path).addprevious(element)


def _mut_no_contributor_role(doc):
    del find(doc, ".//c:person_name").attrib["contributor_role"]


def _setting(path, text):
    """A mutation that sets the text at ``path``."""
    return lambda doc: _set_text(doc, path, text)


def _moving(path, before_path):
    """A mutation that moves the element at ``path`` before the one at ``before_path``."""
    return lambda doc: _move_before(doc, path, before_path)


def _mut_text_in_jats_abstract(doc):
    abstract = find(doc, ".//c:journal_article/jats:abstract")
    abstract.text = "Text straight inside the abstract, outside any <jats:p>."


def _mut_two_content_types_in_body(doc):
    body = find(doc, "c:body")
    ns = etree.QName(body).namespace
    sa = etree.SubElement(body, f"{{{ns}}}sa_component", parent_doi="10.5555/example.1")
    etree.SubElement(sa, f"{{{ns}}}component_list")


def _mut_foreign_element_out_of_place(doc):
    _move_before(doc, ".//c:journal_article/c:crossmark", ".//c:journal_article/c:titles")
    crossmark = find(doc, ".//c:journal_article/c:crossmark")
    crossmark.tag = "{http://www.crossref.org/AccessIndicators.xsd}program"


def _mut_body_before_head(doc):
    root = doc.getroot()
    head = find(doc, "c:head")
    root.remove(head)
    root.append(head)


def _mut_unknown_element_in_journal_article(doc):
    art = find(doc, ".//c:journal_article")
    ns = etree.QName(art).namespace
    art.insert(0, etree.Element(f"{{{ns}}}bogus"))


def _mut_resource_before_doi(doc):
    doi = find(doc, ".//c:journal_article/c:doi_data/c:doi")
    parent = doi.getparent()
    parent.remove(doi)
    parent.append(doi)


def _mut_bad_month(doc):
    _set_text(doc, ".//c:journal_article/c:publication_date/c:month", "123")


def _mut_bad_media_type(doc):
    find(doc, ".//c:journal_metadata/c:issn").set("media_type", "online")


def _mut_missing_sequence(doc):
    del find(doc, ".//c:person_name").attrib["sequence"]


def _mut_missing_surname(doc):
    _remove(doc, ".//c:person_name/c:surname")


def _mut_bad_orcid(doc):
    _set_text(doc, ".//c:person_name/c:ORCID", "0000-0002-1825-0097")


def _mut_empty_batch_id(doc):
    _set_text(doc, "c:head/c:doi_batch_id", "   ")


def _mut_long_batch_id(doc):
    _set_text(doc, "c:head/c:doi_batch_id", "x" * 101)


def _mut_unknown_attribute_on_doi_batch(doc):
    doc.getroot().set("bogus", "1")


def _mut_titles_without_title(doc):
    _remove(doc, ".//c:journal_article/c:titles/c:title")


def _mut_doi_data_after_citation_list(doc):
    doi_data = find(doc, ".//c:journal_article/c:doi_data")
    parent = doi_data.getparent()
    parent.remove(doi_data)
    parent.append(doi_data)


def _mut_two_doi_data(doc):
    doi_data = find(doc, ".//c:journal_article/c:doi_data")
    doi_data.addnext(copy.deepcopy(doi_data))


NEGATIVE = {
    # the cases the brief asks for
    "missing doi_batch_id": _mut_missing_doi_batch_id,
    "head timestamp with letters": _mut_head_timestamp_letters,
    "head timestamp of 20 digits": _mut_head_timestamp_20_digits,
    "doi_data without doi": _mut_doi_data_without_doi,
    "journal_article without doi_data": _mut_journal_article_without_doi_data,
    "bad ISSN": _mut_bad_issn,
    "bad year": _mut_bad_year,
    "unknown element in head": _mut_unknown_element_in_head,
    "empty body": _mut_empty_body,
    # more of the strict parts
    "doi_data without resource": _mut_doi_data_without_resource,
    "empty doi": _mut_empty_doi,
    "missing depositor": _mut_missing_depositor,
    "email under 6 characters": _setting("c:head/c:depositor/c:email_address", "a@b.c"),
    # Crossref's head rules (issue 10)
    "empty email_address": _setting("c:head/c:depositor/c:email_address", ""),
    "empty depositor_name": _setting("c:head/c:depositor/c:depositor_name", ""),
    "depositor_name over 130 characters": _setting("c:head/c:depositor/c:depositor_name", "x" * 131),
    "empty registrant": _setting("c:head/c:registrant", ""),
    "registrant over 255 characters": _setting("c:head/c:registrant", "x" * 256),
    "person_name without contributor_role (up to 5.4)": _mut_no_contributor_role,
    # Crossref's element order (issue 10)
    "publication_date before titles": _moving(".//c:journal_article/c:publication_date",
                                              ".//c:journal_article/c:titles"),
    "jats:abstract before contributors": _moving(".//c:journal_article/jats:abstract",
                                                 ".//c:journal_article/c:contributors"),
    "crossmark before pages": _moving(".//c:journal_article/c:crossmark", ".//c:journal_article/c:pages"),
    "ORCID before surname": _moving(".//c:person_name/c:ORCID", ".//c:person_name/c:surname"),
    "ai:program before titles": _mut_foreign_element_out_of_place,
    # element-only JATS, cited DOIs (issue 10)
    "text directly inside jats:abstract": _mut_text_in_jats_abstract,
    "cited doi not a DOI": _setting(".//c:citation/c:doi", "not a DOI"),
    "cited doi with a 3-digit prefix": _setting(".//c:citation/c:doi", "10.123/abc"),
    "cited doi with an empty suffix": _setting(".//c:citation/c:doi", "10.12345/"),
    "body before head": _mut_body_before_head,
    "unknown element in journal_article": _mut_unknown_element_in_journal_article,
    "resource before doi": _mut_resource_before_doi,
    "bad month": _mut_bad_month,
    "bad issn media_type": _mut_bad_media_type,
    "person_name without sequence": _mut_missing_sequence,
    "person_name without surname": _mut_missing_surname,
    "ORCID not a URL": _mut_bad_orcid,
    "blank doi_batch_id": _mut_empty_batch_id,
    "doi_batch_id over 100 characters": _mut_long_batch_id,
    "unknown attribute on doi_batch": _mut_unknown_attribute_on_doi_batch,
    "titles without title": _mut_titles_without_title,
    "doi_data after citation_list": _mut_doi_data_after_citation_list,
    "two doi_data in one article": _mut_two_doi_data,
}


@pytest.mark.parametrize("mutate", NEGATIVE.values(), ids=NEGATIVE.keys())
def test_negative(mutate):
    doc = template_doc()
    assert is_valid(doc)  # so that the test can fail
    mutate(doc)
    assert not is_valid(doc)


def _ok_timestamp_19_digits(doc):
    _set_text(doc, "c:head/c:timestamp", "9" * 19)


def _ok_43_depositor_name(doc):
    name = find(doc, "c:head/c:depositor/c:depositor_name")
    name.tag = f"{{{etree.QName(name).namespace}}}name"


def _ok_no_version_attribute(doc):
    del doc.getroot().attrib["version"]


def _ok_issn_without_hyphen(doc):
    _set_text(doc, ".//c:journal_metadata/c:issn", "1234567X")


def _ok_title_with_face_markup(doc):
    title = find(doc, ".//c:journal_article/c:titles/c:title")
    ns = etree.QName(title).namespace
    title.text = "Gene expression in "
    italic = etree.SubElement(title, f"{{{ns}}}i")
    italic.text = "Drosophila"
    italic.tail = " larvae"


def _ok_doi_data_with_timestamp_and_collection(doc):
    doi = find(doc, ".//c:journal_article/c:doi_data/c:doi")
    ns = etree.QName(doi).namespace
    ts = etree.Element(f"{{{ns}}}timestamp")
    ts.text = "anything: checked in Python"
    doi.addnext(ts)
    coll = etree.SubElement(doi.getparent(), f"{{{ns}}}collection", property="text-mining")
    etree.SubElement(coll, f"{{{ns}}}item")


def _ok_year_only_date(doc):
    date = find(doc, ".//c:journal_article/c:publication_date")
    for child in list(date):
        if etree.QName(child).localname != "year":
            date.remove(child)


def _ok_xml_lang_on_head(doc):
    find(doc, "c:head").set("{http://www.w3.org/XML/1998/namespace}lang", "en")


def _ok_doi_with_odd_syntax(doc):
    # per-record DOI syntax is Python's job: the schema only bounds the length
    _set_text(doc, ".//c:journal_article/c:doi_data/c:doi", "not/a doi")


def _ok_email_without_at_in_5x(doc):
    # 5.x only asks for 6 to 200 characters
    _set_text(doc, "c:head/c:depositor/c:email_address", "not-an-email")


def _ok_programs_without_crossmark(doc):
    crossmark = find(doc, ".//c:journal_article/c:crossmark")
    ai = find(doc, ".//c:journal_article/c:crossmark/c:custom_metadata")[0]
    crossmark.addprevious(ai)
    crossmark.getparent().remove(crossmark)
    ai.addnext(etree.Element("{http://www.crossref.org/relations.xsd}program"))
    ai.addprevious(etree.Element("{http://www.crossref.org/fundref.xsd}program"))


def _ok_abstract_with_whitespace_between_elements(doc):
    abstract = find(doc, ".//c:journal_article/jats:abstract")
    abstract.text = "\n   "
    abstract[0].tail = "\n  "


def _ok_doi_over_2048_characters(doc):
    # the length is the per-record check's business: one record fails, not the batch
    _set_text(doc, ".//c:journal_article/c:doi_data/c:doi", "10.5555/" + "x" * 3000)


def _ok_cited_doi_with_dotted_suffix(doc):
    _set_text(doc, ".//c:citation/c:doi", "10.1002/(SICI)1097-4571(199806)49:8<693::AID-ASI4>3.0.CO;2-0")


POSITIVE = {
    "head timestamp of 19 digits": _ok_timestamp_19_digits,
    "4.3-style depositor/name": _ok_43_depositor_name,
    "no version attribute": _ok_no_version_attribute,
    "ISSN without hyphen": _ok_issn_without_hyphen,
    "title with face markup": _ok_title_with_face_markup,
    "doi_data with timestamp and collection": _ok_doi_data_with_timestamp_and_collection,
    "year-only date": _ok_year_only_date,
    "xml:lang on head": _ok_xml_lang_on_head,
    "DOI syntax left to Python": _ok_doi_with_odd_syntax,
    "5.x email_address without @": _ok_email_without_at_in_5x,
    "email_address of exactly 6 characters": _setting("c:head/c:depositor/c:email_address", "a@b.cd"),
    "depositor_name of 130 characters": _setting("c:head/c:depositor/c:depositor_name", "x" * 130),
    "registrant of one character": _setting("c:head/c:registrant", "x"),
    "fr/ai/rel programs without crossmark": _ok_programs_without_crossmark,
    "white space between jats:abstract's elements": _ok_abstract_with_whitespace_between_elements,
    "DOI over 2,048 characters left to the record check": _ok_doi_over_2048_characters,
    "cited DOI with a dotted suffix": _ok_cited_doi_with_dotted_suffix,
    "two content types in one body (Crossref refuses)": _mut_two_content_types_in_body,
}


@pytest.mark.parametrize("mutate", POSITIVE.values(), ids=POSITIVE.keys())
def test_positive_variants(mutate):
    doc = template_doc()
    mutate(doc)
    schema = schema_for(doc.getroot())
    assert schema.validate(doc), "\n".join(str(e) for e in schema.error_log)


# ISBNs, exercised in a minimal book deposit.

BOOK = """<doi_batch xmlns="http://www.crossref.org/schema/5.3.0" version="5.3.0">
  <head>
    <doi_batch_id>b1</doi_batch_id><timestamp>1</timestamp>
    <depositor><depositor_name>P</depositor_name><email_address>p@example.org</email_address></depositor>
    <registrant>P</registrant>
  </head>
  <body>
    <book book_type="monograph">
      <book_metadata>
        <titles><title>A book</title></titles>
        <publication_date><year>2020</year></publication_date>
        <isbn media_type="print">{isbn}</isbn>
        <publisher><publisher_name>P</publisher_name></publisher>
        <doi_data><doi>10.5555/book</doi><resource>https://example.org/book</resource></doi_data>
      </book_metadata>
    </book>
  </body>
</doi_batch>"""


def _book_valid(isbn: str) -> bool:
    root = etree.fromstring(BOOK.format(isbn=isbn).encode(), hardened_parser())
    return schema_for(root).validate(etree.ElementTree(root))


@pytest.mark.parametrize(
    "isbn",
    [
        "1596680547",
        "9789000002191",
        "978-0-306-40615-7",
        "0-306-40615-2",
        "080442957X",
        "978 0 306 40615 7",
        "ISBN 978-0-306-40615-7",
        "ISBN-13: 9780306406157",
        "ISBN-10: 0-306-40615-2",
    ],
)
def test_isbn_accepted(isbn):
    assert _book_valid(isbn)


@pytest.mark.parametrize(
    "isbn",
    ["", "12345", "978-0-306-40615-77", "97803064061", "0-306-40615-Y", "0--306-40615-2", "ISBN"],
)
def test_isbn_refused(isbn):
    assert not _book_valid(isbn)


# pending_publication and grants: the two shapes without a journal_article.

PENDING = """<doi_batch xmlns="http://www.crossref.org/schema/4.4.2" version="4.4.2">
  <head>
    <doi_batch_id>p1</doi_batch_id><timestamp>1</timestamp>
    <depositor><depositor_name>P</depositor_name><email_address>p@example.org</email_address></depositor>
    <registrant>P</registrant>
  </head>
  <body>
    <pending_publication>
      <publication><full_title>J</full_title><issn media_type="electronic">2050-084X</issn></publication>
      <titles><title>Soon</title></titles>
      <acceptance_date><month>04</month><day>01</day><year>2016</year></acceptance_date>
      {doi}
    </pending_publication>
  </body>
</doi_batch>"""


def test_pending_publication_requires_its_doi():
    with_doi = etree.fromstring(
        PENDING.format(doi="<doi>10.5555/soon</doi>").encode(), hardened_parser()
    )
    without = etree.fromstring(PENDING.format(doi="").encode(), hardened_parser())
    assert schema_for(with_doi).validate(etree.ElementTree(with_doi))
    assert count_records(with_doi) == 1
    assert not schema_for(without).validate(etree.ElementTree(without))


@pytest.mark.parametrize(
    "timestamp, doi_data, valid",
    [
        ("20210720030518", GRANT_DOI_DATA, True),
        ("20210720030518", "", False),
        ("2021-07-20", GRANT_DOI_DATA, False),
        ("20210720030518", "<doi_data><resource>https://example.org/g</resource></doi_data>", False),
    ],
    ids=["valid", "no doi_data", "bad head timestamp", "doi_data without doi"],
)
def test_grant_schema(timestamp, doi_data, valid):
    root = etree.fromstring(
        grant_xml(timestamp=timestamp, doi_data=doi_data).encode(), hardened_parser()
    )
    assert etree.QName(root).namespace == GRANT_NS
    assert schema_for(root).validate(etree.ElementTree(root)) is valid


def test_body_fragment_root_is_not_a_deposit():
    # Any global element can be a validation root in XSD, so the root name is
    # checked before the catalog is consulted: a bare <journal_article> (or
    # <database>, as EZID sends) is not a deposit even if it would validate.
    doc = template_doc()
    article = copy.deepcopy(find(doc, ".//c:journal_article"))
    assert schema_for(article) is None
    assert lxml_schema("crossref5.3.0.xsd").validate(etree.ElementTree(article))


# Rules that differ by namespace version (issue 10).


@pytest.mark.parametrize(
    "version, email, valid",
    [
        ("4.4.2", "deposits@example.org", True),
        ("4.4.0", "not-an-email", False),  # 4.4.x: Crossref's address pattern
        ("4.4.1", "deposits@example.123", False),  # the last domain label holds no digits
        ("4.3.8", "deposits@example", False),
        ("4.8.1", "not-an-email", True),  # 4.8 relaxed it: length only
        ("5.0.0", "not-an-email", True),
        ("5.5.0", "a@b.c", False),  # under 6 characters
        ("5.5.0", "x" * 201, False),  # over 200
    ],
)
def test_email_rule_per_version(version, email, valid):
    doc = template_doc(f"http://www.crossref.org/schema/{version}")
    _set_text(doc, "c:head/c:depositor/c:email_address", email)
    assert is_valid(doc) is valid


POSTED_540 = """<doi_batch xmlns="http://www.crossref.org/schema/5.4.0" version="5.4.0">
  <head>
    <doi_batch_id>pc1</doi_batch_id><timestamp>1</timestamp>
    <depositor><depositor_name>P</depositor_name><email_address>p@example.org</email_address></depositor>
    <registrant>P</registrant>
  </head>
  <body>
    <posted_content type="preprint">
      <titles><title>A preprint</title></titles>
      <posted_date><month>01</month><day>02</day><year>2024</year></posted_date>
      {middle}
      <doi_data><doi>10.5555/pc</doi><resource>https://example.org/pc</resource></doi_data>
    </posted_content>
  </body>
</doi_batch>"""
STATUS = '<status><state type="withdrawn"/></status>'
INSTITUTION = "<institution><institution_name>Example University</institution_name></institution>"


@pytest.mark.parametrize("version, contributor_role, valid", [
    ("5.4.0", True, True), ("5.4.0", False, False), ("4.3.8", False, False),
    ("5.5.0", False, True),  # the XSD 1.1 either-or is agency/deposit/schema_rules.py's (tests/deposit)
])
def test_contributor_role_per_version(version, contributor_role, valid):
    doc = template_doc(f"http://www.crossref.org/schema/{version}")
    if not contributor_role:
        _mut_no_contributor_role(doc)
    assert is_valid(doc) is valid


@pytest.mark.parametrize("middle, valid", [(STATUS + INSTITUTION, True), (INSTITUTION + STATUS, False)],
                         ids=["status before institution", "status after institution"])
def test_posted_content_order_540(middle, valid):
    root = etree.fromstring(POSTED_540.format(middle=middle).encode(), hardened_parser())
    assert schema_for(root).validate(etree.ElementTree(root)) is valid


@pytest.mark.parametrize("version", GRANT_VERSIONS)
def test_grant_namespaces_share_the_grant_rules(version):
    text = grant_xml(version, doi_data=GRANT_DOI_DATA)
    root = etree.fromstring(text.encode(), hardened_parser())
    assert schema_for(root).validate(etree.ElementTree(root))
    root.find(f"{{http://www.crossref.org/grant_id/{version}}}head/"
              f"{{http://www.crossref.org/grant_id/{version}}}registrant").text = ""
    assert not schema_for(root).validate(etree.ElementTree(root))
