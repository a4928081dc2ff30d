"""Shared by the record-administration tests: registering DOIs and resource-only deposits."""

from __future__ import annotations

from xml.sax.saxutils import escape

from batchgen import Article, deposit_xml
from conftest import basic_headers

RESOURCES_NS = "http://www.crossref.org/doi_resources_schema/{version}"


def register(svc, client, dois: list[str], login: str = "alice", password: str = "alice-password",
             timestamp: str = "20240101000000") -> dict:
    """Deposit minimal articles for ``dois`` as ``login`` and run the worker; returns the submission."""
    headers = basic_headers(login, password)
    response = client.post("/v1/deposits", data=deposit_xml([Article(d) for d in dois], timestamp=timestamp),
                           headers=headers)
    assert response.status_code == 202, response.get_json()
    svc.worker.run_until_idle()
    body = client.get(response.headers["Location"], headers=headers).get_json()
    assert body["counts"]["success_count"] == len(dois), body
    return body


def resources_xml(items: list[str], version: str = "4.4.2", batch_id: str = "res-1") -> bytes:
    """A resource-only deposit with the given body items (XML fragments)."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<doi_batch version="{version}" xmlns="{RESOURCES_NS.format(version=version)}">
  <head>
    <doi_batch_id>{batch_id}</doi_batch_id>
    <depositor><depositor_name>Tests</depositor_name><email_address>res@example.org</email_address></depositor>
  </head>
  <body>
{''.join(items)}
  </body>
</doi_batch>""".encode()


def collection_item(doi: str, urls: list[str], prop: str = "list-based") -> str:
    items = "".join(f'<item label="SECONDARY_{n}"><resource>{escape(u)}</resource></item>'
                    for n, u in enumerate(urls))
    return f"<doi_resources><doi>{escape(doi)}</doi><collection property=\"{prop}\">{items}</collection></doi_resources>"


def funding_item(doi: str) -> str:
    return (f'<fundref_data><doi>{escape(doi)}</doi><program xmlns="http://www.crossref.org/fundref.xsd">'
            '<assertion name="fundgroup"><assertion name="funder_name">NSF</assertion></assertion>'
            '</program></fundref_data>')


def licence_item(doi: str) -> str:
    return (f'<lic_ref_data><doi>{escape(doi)}</doi><program xmlns="http://www.crossref.org/AccessIndicators.xsd">'
            '<license_ref>https://creativecommons.org/licenses/by/4.0/</license_ref></program></lic_ref_data>')


def citations_item(doi: str) -> str:
    return (f'<doi_citations><doi>{escape(doi)}</doi><citation_list><citation key="r1">'
            '<unstructured_citation>Smith 2001</unstructured_citation></citation></citation_list></doi_citations>')


def post_resources(svc, client, data: bytes, login: str = "alice", password: str = "alice-password") -> dict:
    """POST a resource-only deposit to /v1/deposits, run the worker; returns the finished submission."""
    headers = basic_headers(login, password)
    response = client.post("/v1/deposits", data=data, headers=headers)
    assert response.status_code == 202, response.get_json()
    svc.worker.run_until_idle()
    return client.get(response.headers["Location"], headers=headers).get_json()
