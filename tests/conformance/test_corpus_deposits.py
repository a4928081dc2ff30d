"""Conformance over real deposit files: ../shared/corpus/crossref-deposit/EXPECTED.tsv.

`accept` rows validate and register that many records, all Success, for an
account owning their prefixes; `refuse` rows are refused at the door with the
stated class of error; `accept-resources` rows (resource-only deposits) update
DOIs registered first by a minimal full deposit of each DOI the file names,
every record Success with the message Crossref users know.
"""

from __future__ import annotations

import base64
import csv
import re

import pytest

from batchgen import Article, deposit_xml
from conftest import CORPUS, add_account
from corpus_expectations import expected_row
from logcheck import log_counts, log_records, parse_valid_log

DEPOSITS = CORPUS / "crossref-deposit"


def _rows() -> list[dict]:
    expected = DEPOSITS / "EXPECTED.tsv"
    if not expected.exists():
        return []
    with open(expected, newline="") as fh:
        return [expected_row(row) for row in csv.DictReader(fh, delimiter="\t")]


ROWS = _rows()
REFUSAL_STATUS = {"not well-formed": 400, "schema error": 422}


def _prefixes(data: bytes) -> list[str]:
    found = set(re.findall(rb"<doi>\s*(10\.[0-9.]+)/", data))
    return sorted(p.decode().rstrip(".") for p in found) or ["10.5555"]


@pytest.fixture
def depositor(svc):
    def make(data: bytes) -> dict:
        add_account(svc, "corpus", "corpus-password", "corpus@example.org", _prefixes(data))
        token = base64.b64encode(b"corpus:corpus-password").decode()
        return {"Authorization": f"Basic {token}", "Content-Type": "application/xml"}
    return make


@pytest.mark.skipif(not ROWS, reason=f"../shared corpus not present ({DEPOSITS}): conformance test skipped")
@pytest.mark.parametrize("row", ROWS, ids=[r["file"] for r in ROWS])
def test_corpus_file(row, svc, client, depositor):
    data = (DEPOSITS / row["file"]).read_bytes()
    headers = depositor(data)
    response = client.post(f"/v1/deposits?file_name={row['file']}", data=data, headers=headers)
    body = response.get_json()
    if row["outcome"] == "accept":
        assert response.status_code == 202, body
        svc.worker.run_until_idle()
        log = client.get(f"/v1/deposits/{body['submission_id']}/log", headers=headers)
        root = parse_valid_log(log.data)
        records = log_records(root)
        assert len(records) == int(row["records"])
        assert all(status == "Success" for status, _doi, _msg in records), records
        assert log_counts(root) == {"record_count": int(row["records"]), "success_count": int(row["records"]),
                                    "warning_count": 0, "failure_count": 0}
    elif row["outcome"] == "refuse":
        expected = next(code for phrase, code in REFUSAL_STATUS.items() if phrase in row["note"])
        assert response.status_code == expected, body
        assert body["status"] == "refused"
        errors = body["refusal"]["errors"]
        assert errors and all(e["message"] for e in errors)
        if expected == 400:
            assert errors[0]["line"] and errors[0]["column"]
    else:
        assert row["outcome"] == "accept-resources"
        assert response.status_code == 202, body
        svc.worker.run_until_idle()
        log = parse_valid_log(client.get(f"/v1/deposits/{body['submission_id']}/log", headers=headers).data)
        assert {status for status, _doi, _msg in log_records(log)} == {"Failure"}  # nothing registered yet
        parents = _resource_dois(data)
        registered = client.post("/v1/deposits", data=deposit_xml([Article(d) for d in parents]), headers=headers)
        svc.worker.run_until_idle()
        assert client.get(registered.headers["Location"], headers=headers).get_json()["counts"][
            "success_count"] == len(parents)
        again = client.post(f"/v1/deposits?file_name={row['file']}", data=data, headers=headers).get_json()
        svc.worker.run_until_idle()
        log = parse_valid_log(client.get(f"/v1/deposits/{again['submission_id']}/log", headers=headers).data)
        records = log_records(log)
        assert len(records) == RESOURCE_RECORDS.get(row["file"], int(row["records"]))
        assert all(status == "Success" and msg.endswith("Resources processed successfully")
                   for status, _doi, msg in records), records


# EXPECTED.tsv counts 2 records for this file, but it has one body item (doi_citations); the
# second <doi> in it is a cited work inside <citation>, not a DOI the deposit updates.
RESOURCE_RECORDS = {"crossref-schema-bundle-0.3.1__best-practice__resource_references_4.8.0.xml": 1}


def _resource_dois(data: bytes) -> list[str]:
    """The DOIs a resource-only deposit updates: the <doi> child of each body item."""
    from lxml import etree

    root = etree.fromstring(data)
    body = next(child for child in root if etree.QName(child).localname == "body")
    dois = [next(c.text.strip() for c in item if isinstance(c.tag, str) and etree.QName(c).localname == "doi")
            for item in body if isinstance(item.tag, str)]
    return list(dict.fromkeys(dois))
