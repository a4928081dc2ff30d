"""Precision and recall of the matcher on the labelled set, indexed through the real pipeline.

The shared corpus and generated journals are deposited over HTTP, registered
by the worker and loaded by the metadata load; queries derived from them with
realistic damage (and for articles never deposited) are answered by the
matcher. The hard kinds of issue 19 are in it too: sibling journals (shared
title words, other ISSNs), ISSN typos, junk deposited surnames and same-issue
co-authors with similar names.

Floors: precision >= 0.999, recall >= 0.97, and at most 0.5% of the queries
for never-deposited articles answered with a DOI (false positives). The
figures are printed by kind.
"""

from __future__ import annotations

import base64
import csv
import re
from collections import Counter, defaultdict

from conftest import add_account, corpus_dir
from corpus_expectations import expected_row
from labelled_set import (
    corpus_queries, deposit_documents, generate, generate_hard, hard_queries, labelled_queries,
)
from querydata import deposit, load_index

from agency.query.piped_format import Ambiguous, Found, parse_lines

PRECISION_FLOOR, RECALL_FLOOR, NEVER_DEPOSITED_FP_CEILING = 0.999, 0.97, 0.005


def _auth(login: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


def _deposit_corpus(client, svc) -> None:
    folder = corpus_dir("crossref-deposit")
    rows = [expected_row(row) for row in csv.DictReader(open(folder / "EXPECTED.tsv"), delimiter="\t")]
    accepted = [row["file"] for row in rows if row["outcome"] == "accept"]
    alices = {"10.5555", "10.32013"}
    prefixes_of = {name: set(re.findall(r"<doi>\s*(10\.\d+)/", (folder / name).read_text(errors="replace")))
                   for name in accepted}
    others = sorted(set().union(*prefixes_of.values()) - alices)
    add_account(svc, "corpus", "corpus-password", "corpus@example.org", others)
    for name in accepted:
        owner = ("alice", "alice-password") if prefixes_of[name] <= alices else ("corpus", "corpus-password")
        deposit(client, svc, (folder / name).read_bytes(), auth=_auth(*owner))


def test_precision_and_recall_on_the_labelled_set(client, svc, alice):
    generated, hard = generate(), generate_hard()
    for document in deposit_documents(generated) + deposit_documents(hard):
        deposit(client, svc, document)
    _deposit_corpus(client, svc)
    load_index(svc)
    with svc.db.sessions() as session:
        queries = labelled_queries(generated) + hard_queries(hard) + corpus_queries(session)
    parsed = list(parse_lines(q.line for q in queries))
    assert all(p.query is not None for p in parsed), [p.problem for p in parsed if p.problem][:3]
    outcomes = []
    for start in range(0, len(parsed), 250):
        outcomes += svc.queries.matcher.answer(parsed[start:start + 250])

    by_kind: dict[str, Counter] = defaultdict(Counter)
    wrong, missed = [], []
    for query, outcome in zip(queries, outcomes):
        row = by_kind[query.damage]
        row["queries"] += 1
        if query.expected is None:
            row["never"] += 1
            if isinstance(outcome, Found):
                row["false positive"] += 1
                wrong.append((query.damage, query.line, outcome.doi, None))
            continue
        row["positives"] += 1
        if isinstance(outcome, Found):
            row["found"] += 1
            if outcome.doi == query.expected:
                row["correct"] += 1
            else:
                wrong.append((query.damage, query.line, outcome.doi, query.expected))
        else:
            row["ambiguous" if isinstance(outcome, Ambiguous) else "missed"] += 1
            missed.append((query.damage, query.line, outcome))
    total = sum(by_kind.values(), Counter())
    found_any = total["found"] + total["false positive"]
    precision = total["correct"] / found_any
    recall = total["correct"] / total["positives"]
    fp_rate = total["false positive"] / total["never"]
    corpus_count = sum(q.damage.startswith("corpus") for q in queries)
    print(f"\nlabelled set: {len(queries)} queries ({total['positives']} with a deposited answer, "
          f"{total['never']} never deposited; {corpus_count} from the shared corpus)")
    print(f"precision {precision:.4f} ({total['correct']}/{found_any}), recall {recall:.4f} "
          f"({total['correct']}/{total['positives']}), false positives on never-deposited {fp_rate:.4f} "
          f"({total['false positive']}/{total['never']})")
    print(f"{'kind':<55} {'queries':>7} {'recall':>7} {'wrong':>5} {'ambig':>5} {'FP rate':>7}")
    for kind, row in sorted(by_kind.items()):
        recall_of = f"{row['correct'] / row['positives']:.3f}" if row["positives"] else "-"
        fp_of = f"{row['false positive'] / row['never']:.3f}" if row["never"] else "-"
        print(f"{kind:<55} {row['queries']:>7} {recall_of:>7} {row['found'] - row['correct']:>5} "
              f"{row['ambiguous']:>5} {fp_of:>7}")
    print(f"wrong answers: {wrong[:5]}")
    print(f"some misses: {missed[:6]}")
    print("ambiguous with similar co-author:", [m for m in missed if "co-author" in m[0]][:8])
    assert corpus_count >= 5
    assert precision >= PRECISION_FLOOR and recall >= RECALL_FLOOR and fp_rate <= NEVER_DEPOSITED_FP_CEILING
