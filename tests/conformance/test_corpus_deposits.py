"""Conformance over real deposit files: ../shared/corpus/crossref-deposit/EXPECTED.tsv.

`accept` rows validate and register that many records, all Success, for an
account owning their prefixes; `refuse` rows are refused at the door with the
stated class of error; `accept-resources` rows are refused as not supported,
with nothing processed.
"""

from __future__ import annotations

import base64
import csv
import re

import pytest

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
        assert response.status_code == 422, body
        assert "not supported" in body["refusal"]["errors"][0]["message"]
        svc.worker.run_until_idle()
        assert client.get(f"/v1/deposits/{body['submission_id']}", headers=headers).get_json()["counts"][
            "record_count"] == 0
