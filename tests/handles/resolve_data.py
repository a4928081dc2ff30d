"""Registering test DOIs through the real pipeline (deposit API + worker), for the resolution tests."""

from __future__ import annotations

import base64
from xml.sax.saxutils import escape

from batchgen import Article, deposit_xml

ODD_DOIS = [
    "10.5555/(SICI)1097-4636(199709)36:3<297::AID-JBM3>3.0.CO;2-G",
    "10.5555/a#hash",
    "10.5555/with/several/parts",
    "10.5555/semi;colon",
    "10.5555/Mixed.Case-Suffix_1",
    "10.5555/percent%20in-suffix",
    "10.5555/ends-with(1)",
    "10.5555/ünïcødé",
]


def auth(login: str = "alice", password: str = "alice-password") -> dict:
    token = base64.b64encode(f"{login}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def register_xml(client, svc, xml: bytes, login: str = "alice", password: str = "alice-password") -> list[dict]:
    """Deposit ``xml``, run the worker, and return the per-record results (asserting the batch completed)."""
    response = client.post("/v1/deposits", data=xml, headers={**auth(login, password),
                                                              "Content-Type": "application/xml"})
    assert response.status_code in (200, 202), response.get_data(as_text=True)
    svc.worker.run_until_idle()
    shown = client.get(f"/v1/deposits/{response.get_json()['submission_id']}", headers=auth(login, password)).get_json()
    assert shown["status"] == "completed", shown
    return shown["records"]


def register(client, svc, articles: list[Article], login: str = "alice", password: str = "alice-password",
             **kwargs) -> list[dict]:
    records = register_xml(client, svc, deposit_xml(articles, **kwargs), login, password)
    assert all(r["status"] == "Success" for r in records), records
    return records


def pending_xml(doi: str, timestamp: str = "20240102000000") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<doi_batch xmlns="http://www.crossref.org/schema/4.4.2" version="4.4.2">
  <head>
    <doi_batch_id>pending-1</doi_batch_id>
    <timestamp>{timestamp}</timestamp>
    <depositor><depositor_name>Test Press</depositor_name><email_address>p@example.org</email_address></depositor>
    <registrant>Test Press</registrant>
  </head>
  <body>
    <pending_publication>
      <publication><full_title>Journal of Tests</full_title><issn media_type="electronic">1234-5679</issn></publication>
      <titles><title>Accepted, not yet published</title></titles>
      <acceptance_date><month>04</month><day>01</day><year>2024</year></acceptance_date>
      <doi>{escape(doi)}</doi>
    </pending_publication>
  </body>
</doi_batch>
""".encode()
