"""Precision and recall of the matcher on the labelled set, indexed through the real pipeline.

The shared corpus and generated journals are deposited over HTTP, registered
by the worker and loaded by the metadata load; queries derived from them with
realistic damage (and for articles never deposited) are answered by the
matcher. Floors: precision >= 0.99, recall >= 0.95.
"""

from __future__ import annotations

import base64
import csv
import re
from collections import Counter

from conftest import add_account, corpus_dir
from corpus_expectations import expected_row
from labelled_set import corpus_queries, deposit_documents, generate, labelled_queries
from querydata import deposit, load_index

from agency.query.piped_format import Ambiguous, Found, parse_lines

PRECISION_FLOOR, RECALL_FLOOR = 0.99, 0.95


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
    generated = generate()
    for document in deposit_documents(generated):
        deposit(client, svc, document)
    _deposit_corpus(client, svc)
    load_index(svc)
    with svc.db.sessions() as session:
        queries = labelled_queries(generated) + corpus_queries(session)
    parsed = list(parse_lines(q.line for q in queries))
    assert all(p.query is not None for p in parsed), [p.problem for p in parsed if p.problem][:3]
    outcomes = []
    for start in range(0, len(parsed), 250):
        outcomes += svc.queries.matcher.answer(parsed[start:start + 250])

    found = correct = positives = ambiguous = 0
    misses, wrong, missed = Counter(), [], []
    for query, outcome in zip(queries, outcomes):
        positives += query.expected is not None
        if isinstance(outcome, Found):
            found += 1
            if outcome.doi == query.expected:
                correct += 1
            else:
                wrong.append((query.damage, query.line, outcome.doi, query.expected))
        elif query.expected is not None:
            misses[query.damage] += 1
            missed.append((query.line, outcome))
            ambiguous += isinstance(outcome, Ambiguous)
    precision, recall = correct / found, correct / positives
    corpus_count = sum(q.damage.startswith("corpus") for q in queries)
    print(f"\nlabelled set: {len(queries)} queries ({positives} with a deposited answer, "
          f"{len(queries) - positives} never deposited; {corpus_count} from the shared corpus)")
    print(f"precision {precision:.4f} ({correct}/{found}), recall {recall:.4f} ({correct}/{positives}); "
          f"ambiguous among misses: {ambiguous}")
    print(f"misses by damage: {dict(misses)}")
    print(f"wrong answers: {wrong[:5]}")
    print(f"some misses: {missed[:6]}")
    assert corpus_count >= 5
    assert precision >= PRECISION_FLOOR and recall >= RECALL_FLOOR
