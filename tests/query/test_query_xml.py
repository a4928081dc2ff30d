"""XML query batches (Crossref's query schema 2.0) through /servlet/query, doQueryUpload and /v1/queries.

Answers are ``crossref_result`` documents, checked against our own output XSD;
the shared corpus of query batches is the conformance input; hostile, broken,
invalid and oversized batches are refused with a clear status and message.
"""

from __future__ import annotations

import io
from pathlib import Path

from lxml import etree
from querydata import ALICE_AUTH, deposit, index_journal, load_index

from conftest import corpus_dir

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "crossref-query"
Q = "http://www.crossref.org/qrschema/2.0"
NS = {"r": Q}


def batch(*queries: str, batch_id: str = "b1") -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<query_batch version="2.0" '
            'xmlns="http://www.crossref.org/qschema/2.0"><head><email_address>a@example.org</email_address>'
            f"<doi_batch_id>{batch_id}</doi_batch_id></head><body>" + "".join(queries) + "</body></query_batch>")


def journal(key: str, *, issn="", title="", author="", volume="", issue="", page="", year="") -> str:
    parts = [("issn", issn), ("journal_title", title), ("author", author), ("volume", volume), ("issue", issue),
             ("first_page", page), ("year", year)]
    return f'<query key="{key}">' + "".join(f"<{n}>{v}</{n}>" for n, v in parts if v) + "</query>"


def answered(response) -> etree._Element:
    """The response's crossref_result, checked against our output schema."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/xml"
    root = etree.fromstring(response.get_data())
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "crossref_query_output2.0.xsd")))
    assert schema.validate(root), schema.error_log
    return root


def by_key(root) -> dict[str, list[tuple[str, str | None, str | None]]]:
    out: dict[str, list] = {}
    for q in root.findall("r:query_result/r:body/r:query", NS):
        out.setdefault(q.get("key"), []).append((q.get("status"), q.findtext("r:doi", namespaces=NS),
                                                 q.findtext("r:msg", namespaces=NS)))
    return out


def post_xml(client, body: str | bytes, auth=ALICE_AUTH):
    return client.post("/v1/queries", data=body, headers={**auth, "Content-Type": "application/xml"})


def test_journal_queries_resolved_unresolved_and_multiresolved(client, svc, alice):
    index_journal(client, svc)
    from batchgen import Article, deposit_xml

    xml = deposit_xml([Article("10.5555/p.1", surname="Okafor", first_page="5")], journal="Paged", issn="2049-3630")
    deposit(client, svc, xml)
    deposit(client, svc, xml.replace(b"<issue>1</issue>", b"<issue>2</issue>").replace(b"10.5555/p.1", b"10.5555/p.2")
            .replace(b"batch-1", b"batch-2"))
    load_index(svc)
    body = batch(journal("found", issn="1234-5679", title="J Tests", author="Mueller", volume="1", page="239-245",
                         year="2024"),
                 journal("typo", issn="1234-5678", title="Journal of Tests", author="Smith", volume="1", page="250",
                         year="2024"),
                 journal("none", title="Journal of Tests", author="Tanaka", volume="9", page="77", year="2024"),
                 journal("two", issn="2049-3630", author="Okafor", volume="1", page="5", year="2024"),
                 '<query key="lookup"><doi>10.5555/jt.4</doi></query>',
                 '<query key="rejected"><journal_title>Journal of Tests</journal_title><volume>1</volume></query>')
    root = answered(post_xml(client, body))
    assert root.findtext("r:query_result/r:head/r:doi_batch_id", namespaces=NS) == "b1"
    keys = by_key(root)
    assert keys["found"] == [("resolved", "10.5555/jt.1", None)]
    (status, doi, msg), = keys["typo"]
    assert (status, doi) == ("resolved", "10.5555/jt.2") and "wrong check digit" in msg
    assert keys["none"][0][0] == "unresolved" and keys["none"][0][2].startswith("NO_MATCH")
    assert keys["two"] == [("multiresolved", "10.5555/p.1", keys["two"][0][2]),
                           ("multiresolved", "10.5555/p.2", keys["two"][1][2])]
    assert keys["lookup"][0][:2] == ("resolved", "10.5555/jt.4")
    assert keys["rejected"][0][0] == "unresolved" and keys["rejected"][0][2].startswith("REJECTED")
    lookup = root.find("r:query_result/r:body/r:query[@key='lookup']", NS)
    assert lookup.findtext("r:author", namespaces=NS) == "Kowalski"


def test_servlet_query_and_do_query_upload_take_xml(client, svc, alice):
    index_journal(client, svc)
    body = batch(journal("k1", issn="1234-5679", author="Smith", volume="1", page="250", year="2024"))
    via_get = client.get("/servlet/query", query_string={"usr": "alice", "pwd": "alice-password", "qdata": body})
    assert by_key(answered(via_get))["k1"] == [("resolved", "10.5555/jt.2", None)]
    via_post = client.post("/servlet/query", data={"usr": "alice", "pwd": "alice-password", "qdata": body,
                                                   "format": "xsd_xml"})
    assert via_post.get_data() == via_get.get_data()
    other_format = client.get("/servlet/query", query_string={"usr": "alice", "pwd": "alice-password",
                                                              "qdata": body, "format": "unixref"})
    assert other_format.status_code == 400 and "xsd_xml" in other_format.get_data(as_text=True)
    upload = client.post("/servlet/deposit", content_type="multipart/form-data", data={
        "operation": "doQueryUpload", "login_id": "alice", "login_passwd": "alice-password",
        "fname": (io.BytesIO(body.encode()), "q.xml")})
    assert by_key(answered(upload))["k1"] == [("resolved", "10.5555/jt.2", None)]


def test_the_shared_query_corpus_is_answered_query_for_query(client, svc, alice):
    for path in sorted(corpus_dir("crossref-query").glob("*.xml")):
        data = path.read_bytes()
        inputs = etree.fromstring(data).findall("{http://www.crossref.org/qschema/2.0}body/"
                                                "{http://www.crossref.org/qschema/2.0}query")
        root = answered(post_xml(client, data))
        answers = root.findall("r:query_result/r:body/r:query", NS)
        assert [a.get("key") for a in answers] == [q.get("key") for q in inputs], path.name
        for query, answer in zip(inputs, answers):
            assert answer.get("status") == "unresolved"  # nothing of theirs is registered here
            unstructured = query.find("{http://www.crossref.org/qschema/2.0}unstructured_citation") is not None
            expected = "UNSUPPORTED" if unstructured else "NO_MATCH"
            assert answer.findtext("r:msg", namespaces=NS).startswith(expected), path.name


def test_hostile_broken_invalid_and_oversized_batches_are_refused(client, svc, alice):
    hostile = ('<?xml version="1.0"?><!DOCTYPE query_batch [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
               + batch(journal("k", title="&b;", author="Smith")).split("?>", 1)[1])
    response = post_xml(client, hostile)
    assert response.status_code == 400 and "DOCTYPE" in response.get_json()["error"]["message"]
    external = ('<?xml version="1.0"?><!DOCTYPE query_batch SYSTEM "http://127.0.0.1:9/x.dtd">'
                + batch(journal("k", title="J", author="Smith")).split("?>", 1)[1])
    assert post_xml(client, external).status_code == 400
    broken = post_xml(client, batch(journal("k", title="J", author="Smith"))[:-10])
    assert broken.status_code == 400 and "well-formed" in broken.get_json()["error"]["message"]
    invalid = post_xml(client, batch('<query key="k"><colour>blue</colour></query>'))
    assert invalid.status_code == 422 and "colour" in invalid.get_json()["error"]["message"]
    wrong_root = post_xml(client, '<doi_batch xmlns="http://www.crossref.org/schema/5.3.1"/>')
    assert wrong_root.status_code == 422 and "query_batch" in wrong_root.get_json()["error"]["message"]
    svc.settings = svc.settings.replace(query_xml_max_queries=3, query_xml_max_bytes=2000)
    svc.queries.settings = svc.settings
    too_many = post_xml(client, batch(*[journal(f"k{n}", title="J", author="Smith") for n in range(4)]))
    assert too_many.status_code == 413 and "at most 3" in too_many.get_json()["error"]["message"]
    too_big = post_xml(client, batch(journal("k", title="J" * 2100, author="Smith")))
    assert too_big.status_code == 413 and "2000" in too_big.get_json()["error"]["message"]
    assert post_xml(client, batch(journal("k", title="J", author="Smith"))).status_code == 200
