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
from dataclasses import replace

from agency.query import matcher
from agency.query.matcher import FALLBACK_STRATEGIES, FIRST_STRATEGIES, TERMS_PER_STATEMENT, _lookup, _lookup_rows
from agency.query.piped_format import Found, NoMatch, parse_line
from agency.query.scoring import QueryKeys

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
            sample = tuple(2001 if column.key == "year" else "x"
                           for column in strategy.columns + tuple(r.column for r in strategy.rule_outs))
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


def _same_citation(count: int, **varying) -> list[RecordMetadata]:
    """``count`` articles by Smith (2001, first page 5, volume 7) except for what ``varying`` spreads:
    each keyword names a field and a function of n."""
    records = []
    for n in range(count):
        fields = dict(volume="7", first_page="5", year=2001)
        fields.update({name: spread(n) for name, spread in varying.items()})
        records.append(RecordMetadata(
            seq=n + 1, doi=f"10.5555/same.{n}", url=f"https://example.org/{n}", timestamp="20240101000000",
            content_type="journal_article", body_type="journal", title=f"Article {n}",
            journal_title=f"Journal {n}", issue="1",
            contributors=[Contributor("person", "author", "first", "Smith", "A", None)],
            identifiers=[IdentifierText("issn", issn_of(n), "print")], **fields))
    return records


def _rows_for(svc, strategy_name: str, line: str) -> list[str]:
    strategy = next(s for s in FALLBACK_STRATEGIES if s.name == strategy_name)
    keys = QueryKeys.of(parse_line(1, line).query)
    with svc.db.engine.connect() as connection:
        return sorted({row[1] for row in _lookup_rows(connection, strategy, strategy.key_rows(keys))})


def test_fallback_look_ups_leave_records_the_scorer_rules_out_in_the_index(svc):
    """A surname, year and page shared by hundreds of articles (a common name in a large agency): a line
    citing a volume none of them has finds none of them, and one citing volume 17 finds volume 17's
    article and the one that gives no volume, as the scorer would keep them. Likewise page + volume with
    the year: only records within a year of the line's, or giving none, leave the index."""
    records = _same_citation(300, volume=lambda n: str(n) if n else None)
    index(svc, records)
    assert _rows_for(svc, "author+year+page", "|Some Journal|Smith|999||5|2001|||") == ["10.5555/same.0"]
    assert _rows_for(svc, "author+year+page", "|Some Journal|Smith|17||5|2001|||") == \
        ["10.5555/same.0", "10.5555/same.17"]
    # With no volume in the line, nothing is ruled out by volume: all 300.
    assert len(_rows_for(svc, "author+year+page", "|Some Journal|Smith|||5|2001|||")) == 300


def test_page_and_volume_look_ups_keep_only_near_years(svc):
    records = _same_citation(40, year=lambda n: 1980 + n if n else None)
    index(svc, records)
    found = _rows_for(svc, "page+volume", "0000-0000||Smith|7||5|2000|||")
    assert found == sorted(["10.5555/same.0", "10.5555/same.19", "10.5555/same.20", "10.5555/same.21"]), found
    assert len(_rows_for(svc, "page+volume", "0000-0000||Smith|7||5||||")) == 40


def test_rule_outs_in_the_look_ups_change_no_answer(svc, monkeypatch):
    """The same lines answered with the rule-outs checked in SQL and with them left to the scorer alone."""
    records = journal_records(600) + _same_citation(60, volume=lambda n: str(n % 9) if n % 5 else None,
                                                    year=lambda n: 1995 + n % 12 if n % 7 else None)
    index(svc, records)
    rnd = random.Random(3)
    lines = []
    for r in rnd.sample(records, 250):
        volume = r.volume or ""
        if rnd.random() < 0.4:
            volume = str(rnd.randrange(0, 12))
        year = str((r.year or 2000) + rnd.choice((0, 0, 1, 2, -3)))
        issn = r.identifiers[0].raw if rnd.random() < 0.3 else "0000-0000"
        lines.append("|".join([issn, rnd.choice(("", r.journal_title)), r.contributors[0].surname, volume, "",
                               rnd.choice((r.first_page or "", "")), rnd.choice((year, "")), "", "k", ""]))
    parsed = [parse_line(i, line) for i, line in enumerate(lines, 1)]
    with_rule_outs = svc.queries.matcher.answer(parsed)
    monkeypatch.setattr(matcher, "FIRST_STRATEGIES", tuple(replace(s, rule_outs=()) for s in FIRST_STRATEGIES))
    monkeypatch.setattr(matcher, "FALLBACK_STRATEGIES", tuple(replace(s, rule_outs=()) for s in FALLBACK_STRATEGIES))
    without = svc.queries.matcher.answer(parsed)
    assert with_rule_outs == without
    assert sum(isinstance(o, Found) for o in without) > 40  # the lines are not all misses


def test_a_key_that_finds_more_than_a_look_up_returns_never_answers_from_a_partial_list(svc, monkeypatch):
    """Page 5 of volume 7 (2001) in 27 journals, Smith's article in the first. With a look-up limit of 20
    rows, the look-up by page and volume cannot return them all, and what it leaves out might be a rival
    as good as the winner: the line is answered NO_MATCH with the reason, never from the partial list.
    The other lines of the same call keep their answers (the statement is split until the broad key
    stands alone)."""
    records = [replace(r, contributors=[Contributor("person", "author", "first", "Smith" if n == 0 else "Jones",
                                                    "A", None)]) for n, r in enumerate(_same_citation(27))]
    other = replace(journal_records(1)[0], doi="10.5555/other", first_page="9", volume="3", year=2001)
    index(svc, records + [other])
    lines = ["0000-0000||Smith|7||5|2001|||", f"{other.identifiers[0].raw}||Smith|3||9|2001|||",
             "0000-0000||Smith|7||5|2001|||"]
    parsed = [parse_line(i, line) for i, line in enumerate(lines, 1)]
    assert svc.queries.matcher.answer(parsed) == [Found("10.5555/same.0"), Found("10.5555/other"),
                                                  Found("10.5555/same.0")]
    monkeypatch.setattr(matcher, "MAX_ROWS_PER_LOOKUP", 20)
    matcher._lookup.cache_clear()
    try:
        outcomes = svc.queries.matcher.answer(parsed)
    finally:
        matcher._lookup.cache_clear()
    assert outcomes[1] == Found("10.5555/other")
    for outcome in (outcomes[0], outcomes[2]):
        assert isinstance(outcome, NoMatch) and "too many registered records share" in outcome.detail, outcome


def _seeking_and_filtering(strategy_name: str):
    strategy = next(s for s in FALLBACK_STRATEGIES if s.name == strategy_name)
    assert strategy.seeks_rule_out
    return strategy, replace(strategy, seeks_rule_out=False)


def test_a_rule_out_sought_in_the_index_finds_what_the_filter_keeps(svc, database_url):
    """PostgreSQL seeks the volume of an author + year + page look-up in the index, one branch of the
    rule-out at a time; every kind of record volume (the line's, another, '', none) against every kind of
    line volume (one, '', none) must give exactly the rows the one-condition statement gives."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite tests the rule-out on the index entry with the one condition: nothing to compare")
    index(svc, _same_citation(16, volume=lambda n: [None, "7", "8", "x"][n % 4]))
    with svc.db.transaction() as session:  # the loader stores no empty volume; the rule-out still allows one
        session.execute(text("UPDATE metadata_records SET volume_key = '' WHERE volume_key = 'x'"))
    seeking, filtering = _seeking_and_filtering("author+year+page")
    with svc.db.engine.connect() as connection:
        author_year_page = _author_year_page(connection)
        key_rows = [(*author_year_page, volume) for volume in ("7", "9", "", None)]
        for row in key_rows:
            sought = sorted(map(tuple, _lookup_rows(connection, seeking, [row])))
            filtered = sorted(map(tuple, _lookup_rows(connection, filtering, [row])))
            assert sought == filtered, row
        counts = [len(_lookup_rows(connection, seeking, [row])) for row in key_rows]
        both = sorted(map(tuple, _lookup_rows(connection, seeking, key_rows)))
        assert both == sorted(map(tuple, _lookup_rows(connection, filtering, key_rows)))
    # volume 7: its 4 and the 8 with none or ''; 9: those 8; '': all with '' or none (8); none: all 16
    assert counts == [12, 8, 8, 16], counts


def _author_year_page(connection) -> tuple:
    """The keys the indexed records share (as the loader made them)."""
    [row] = connection.execute(text("SELECT DISTINCT first_author_key, year, first_page_key FROM metadata_records"))
    return tuple(row)


def test_postgresql_seeks_the_volume_in_the_index_and_reads_no_row_it_rules_out(svc, database_url):
    """The plan of the author + year + page look-up: the volume is an index condition of every branch
    that has one, and no row is fetched only to be removed by a filter."""
    if database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's plan; SQLite's are checked by test_look_ups_probe_indexes_when_most_titles_...")
    index(svc, _same_citation(300, volume=lambda n: str(n) if n else None))
    with svc.db.engine.connect() as connection:
        connection.execute(text("ANALYZE metadata_records"))
        strategy, _ = _seeking_and_filtering("author+year+page")
        keys, prepared = _lookup(strategy, connection.dialect)
        parameters = prepared.parameters(keys.parameters([(*_author_year_page(connection), "999")] * 20))
        plan = [row[0] for row in connection.exec_driver_sql(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + prepared.sql, parameters)]
    shown = "\n".join(plan)
    # Every branch but "no volume in the line" (which the planner may scan here: all 300 rows share its keys).
    assert sum("Index Cond" in line and "volume_key" in line for line in plan) == 3, shown
    assert "Rows Removed by Filter" not in shown, shown


def test_hostile_volumes_in_the_sought_rule_out_travel_as_data(svc):
    """The author + year + page look-up carries the line's volume into every branch of its rule-out (PostgreSQL
    seeks each in the index): quotes, SQL, an empty-looking volume and a very long one are values, never
    syntax; they find nothing, spoil no other line, and change nothing stored."""
    records = _same_citation(5, volume=lambda n: str(n + 1))
    index(svc, records)
    hostile = ["1' OR '1'='1", "'); DELETE FROM metadata_records; --", "\\", "%", "V" * 3000, "\u0000x", "null"]
    every = sorted(r.doi for r in records)
    for volume in hostile:  # a volume that keeps no letter or digit is no volume: nothing is ruled out
        line = f"|Some Journal|Smith|{volume}||5|2001|||"
        kept = QueryKeys.of(parse_line(1, line).query).volumes
        assert _rows_for(svc, "author+year+page", line) == ([] if kept else every), volume
    assert _rows_for(svc, "author+year+page", "|Some Journal|Smith|3||5|2001|||") == ["10.5555/same.2"]
    good = "|Journal 2|Smith|3||5|2001||good|"
    lines = [good] + [f"|Journal 2|Smith|{volume}||5|2001||k|" for volume in hostile] + [good]
    outcomes = svc.queries.matcher.answer([parse_line(i, line) for i, line in enumerate(lines, 1)])
    assert outcomes[0] == outcomes[-1] == Found("10.5555/same.2")
    for volume, outcome in zip(hostile, outcomes[1:-1]):
        kept = QueryKeys.of(parse_line(1, f"|Journal 2|Smith|{volume}||5|2001||k|").query).volumes
        assert isinstance(outcome, NoMatch) if kept else outcome == Found("10.5555/same.2"), (volume, outcome)
    with svc.db.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM metadata_records")).scalar() == 5
