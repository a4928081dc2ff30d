"""XML query batches against a real server process (HTTP over loopback): /v1/queries and /servlet/query."""

from __future__ import annotations

import re

import pytest
import requests
from lxml import etree

from live_server import agency_env, start_server

R = {"r": "http://www.crossref.org/qrschema/2.0"}
BATCH = ('<?xml version="1.0" encoding="UTF-8"?><query_batch version="2.0" xmlns="http://www.crossref.org/qschema/2.0">'
         "<head><doi_batch_id>live</doi_batch_id></head><body>"
         '<query key="a"><issn>1234-5679</issn><author>Nobody</author><first_page>1</first_page></query>'
         '<query key="b"><unstructured_citation>Smith, J. (2001). A study.</unstructured_citation></query>'
         "</body></query_batch>")


@pytest.fixture
def server(tmp_path, database_url):
    live = start_server(agency_env(tmp_path, database_url, AGENCY_QUERY_XML_MAX_QUERIES="2"), "--demo")
    yield live
    live.stop()


def test_xml_query_batches_over_http(server):
    line = next(line for line in server.output if line.startswith("demo account"))
    login, password = re.search(r"login '([^']+)', password '([^']+)'", line).groups()
    response = requests.post(server.url + "/v1/queries", data=BATCH.encode(), auth=(login, password),
                             headers={"Content-Type": "application/xml"}, timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/xml")
    root = etree.fromstring(response.content)
    statuses = [(q.get("key"), q.get("status")) for q in root.findall("r:query_result/r:body/r:query", R)]
    assert statuses == [("a", "unresolved"), ("b", "unresolved")]
    servlet = requests.post(server.url + "/servlet/query", data={"usr": login, "pwd": password, "qdata": BATCH},
                            timeout=30)
    assert servlet.status_code == 200 and servlet.content == response.content
    three = BATCH.replace("</body>", '<query key="c"><doi>10.5555/x</doi></query></body>')
    refused = requests.post(server.url + "/v1/queries", data=three.encode(), auth=(login, password),
                            headers={"Content-Type": "application/xml"}, timeout=30)
    assert refused.status_code == 413 and "at most 2" in refused.text
