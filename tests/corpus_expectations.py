"""Rows of ../shared/corpus/crossref-deposit/EXPECTED.tsv that agency's own decisions supersede.

The shared corpus is read-only here. Where a later decision changes what agency must do
with one of its files, the new expectation is stated once, here, with its reason, and
every test that reads EXPECTED.tsv applies it (until the shared file is updated).
"""

from __future__ import annotations

SUPERSEDED = {
    # eLife's generator test output with an empty depositor_name, email_address and
    # registrant: Crossref's schemas require 1, 6 and 1 characters (issue 10, schemas/README.md).
    "elife__crossref-606__5.3.1.xml": {
        "outcome": "refuse", "records": "0",
        "note": "schema error: empty depositor_name, email_address and registrant (Crossref's minimum lengths)",
    },
}


def expected_row(row: dict) -> dict:
    """``row`` from EXPECTED.tsv, with agency's superseding expectation applied if there is one."""
    return {**row, **SUPERSEDED.get(row["file"], {})}
