"""Shared helpers for the query tests: deposit through the real pipeline and load the metadata database."""

from __future__ import annotations

import base64

from batchgen import Article, deposit_xml

ALICE_AUTH = {"Authorization": "Basic " + base64.b64encode(b"alice:alice-password").decode()}
BOB_AUTH = {"Authorization": "Basic " + base64.b64encode(b"bob:bob-password").decode()}


def deposit(client, svc, xml: bytes, auth: dict = ALICE_AUTH) -> None:
    response = client.post("/v1/deposits", data=xml, headers={**auth, "Content-Type": "application/xml"})
    assert response.status_code in (200, 202), response.get_data(as_text=True)
    svc.worker.run_until_idle()


def load_index(svc) -> None:
    report = svc.mddb.run(mail=False)
    assert not report.failed, report.summary()


def index_journal(client, svc) -> None:
    """Journal of Tests (ISSN 1234-5679), volume 1 issue 1, year 2024: four articles."""
    articles = [
        Article("10.5555/jt.1", surname="Müller", first_page="239", title="Coral reef dynamics"),
        Article("10.5555/jt.2", surname="Smith", first_page="250", title="Protein folding"),
        Article("10.5555/jt.3", surname="Nguyễn", first_page="e15743", title="Spin lattices"),
        Article("10.5555/jt.4", surname="Kowalski", first_page="301", title="Gauge networks"),
    ]
    deposit(client, svc, deposit_xml(articles, journal="Journal of Tests", issn="1234-5679"))
    load_index(svc)
