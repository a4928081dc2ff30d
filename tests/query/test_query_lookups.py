"""The matcher's look-ups: many key tuples in one statement, each row traced back to the lines that asked.

Records go straight into the metadata tables through ``agency.metadata.index``
(the load's own writer), so hundreds of them cost no deposits.
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy import text

from agency.metadata.extraction import Contributor, IdentifierText, RecordMetadata
from agency.metadata.index import LoadSource, MetadataWriter, prepare
from agency.query.matcher import FALLBACK_STRATEGIES, FIRST_STRATEGIES, TERMS_PER_STATEMENT, _lookup
from agency.query.piped_format import Found, NoMatch, parse_line

SURNAMES = ["Smith", "Okafor", "Tanaka", "Rossi", "Haddad", "Lindqvist", "Moreau", "Petrović"]


def journal_records(count: int, journals: int = 7) -> list[RecordMetadata]:
    """``count`` articles over a few journals; pages repeat across journals and volumes."""
    records = []
    for n in range(count):
        journal = n % journals
        records.append(RecordMetadata(
            seq=n + 1, doi=f"10.5555/look.{n}", url=f"https://example.org/{n}", timestamp="20240101000000",
            content_type="journal_article", body_type="journal", title=f"Article {n}",
            journal_title=f"Annals of Lookups {journal}", volume=str(1 + n // 200), issue="1",
            first_page=str(1 + (n // journals) % 200 * 3), year=2000 + n // 200,
            contributors=[Contributor("person", "author", "first", SURNAMES[n % len(SURNAMES)], "A", None)],
            identifiers=[IdentifierText("issn", issn_of(journal), "print")]))
    return records


def issn_of(journal: int) -> str:
    from agency.metadata.identifiers import issn_check_char

    first7 = f"{2000000 + journal:07d}"
    return f"{first7[:4]}-{first7[4:]}{issn_check_char(first7)}"


def index(svc, records: list[RecordMetadata]) -> None:
    source = LoadSource("test/2024/01/1", "alice", None, None)
    with svc.db.transaction() as session:
        results = MetadataWriter().write(session, [prepare(r, source) for r in records])
    assert all(result.status == "Success" for result in results.values()), results


def test_every_line_of_a_large_file_gets_its_own_record(svc):
    records = journal_records(3 * TERMS_PER_STATEMENT + 17)  # several statements per strategy
    index(svc, records)
    rnd = random.Random(7)
    order = list(range(len(records)))
    rnd.shuffle(order)
    lines = []
    for n in order:  # by ISSN, by title (another strategy), and some that name another volume
        r = records[n]
        issn_or_title = (r.identifiers[0].raw, "") if n % 3 else ("", r.journal_title)
        volume = r.volume if n % 11 else str(int(r.volume) + 50)
        lines.append("|".join([*issn_or_title, r.contributors[0].surname, volume, "", r.first_page, str(r.year),
                               "", f"k{n}", ""]))
    outcomes = svc.queries.matcher.answer([parse_line(i, line) for i, line in enumerate(lines, 1)])
    for n, outcome in zip(order, outcomes):
        if n % 11:
            assert outcome == Found(records[n].doi), (lines[order.index(n)], outcome)
        else:
            assert isinstance(outcome, NoMatch), (lines[order.index(n)], outcome)


def _scans(svc, plan_rows: list[str]) -> list[str]:
    return [row for row in plan_rows if row.startswith("SCAN metadata_")]


def test_look_ups_probe_indexes_when_most_titles_are_missing(svc, database_url):
    """Journal articles have no book, series or abbreviated titles: with planner statistics
    saying so, a look-up by those titles must still probe an index, never scan the table."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's query plans; PostgreSQL's are checked by bench/query.py's figures")
    index(svc, journal_records(1500))
    with svc.db.engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        for strategy in FIRST_STRATEGIES + FALLBACK_STRATEGIES:
            keys, prepared = _lookup(strategy, connection.dialect)
            sample = tuple(2001 if column.key == "year" else "x" for column in strategy.columns)
            parameters = prepared.parameters(keys.parameters([sample] * 50))
            plan = [row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + prepared.sql, parameters)]
            assert not _scans(svc, plan), (strategy.name, plan)
            assert plan[0].startswith("SCAN") and "VIRTUAL TABLE" in plan[0], (strategy.name, plan)


def test_hostile_keys_travel_as_data_and_spoil_no_other_line(svc):
    """Keys reach the database as one JSON array (SQLite) or arrays (PostgreSQL): quotes,
    backslashes, SQL, brackets and very long titles are values, never syntax."""
    records = journal_records(20)
    index(svc, records)
    hostile_titles = ['Annals" of ], [Lookups', "Annals\\ of Lookups 1", "x' OR '1'='1' --", "]}",
                      "Ann\u00e4ls \U0001F600 of Lookups", "T" * 5000, "null", "[1, 2]"]
    good = records[3]
    good_line = "|".join([good.identifiers[0].raw, "", good.contributors[0].surname, good.volume, "",
                          good.first_page, str(good.year), "", "good", ""])
    lines = [good_line] + [f"|{title}|Smith|1||99999|2000|||" for title in hostile_titles] + [good_line]
    outcomes = svc.queries.matcher.answer([parse_line(i, line) for i, line in enumerate(lines, 1)])
    assert outcomes[0] == outcomes[-1] == Found(good.doi)
    assert all(isinstance(outcome, NoMatch) for outcome in outcomes[1:-1]), outcomes
    with svc.db.engine.connect() as connection:  # nothing was written or dropped by the look-ups
        assert connection.execute(text("SELECT count(*) FROM metadata_records")).scalar() == 20
