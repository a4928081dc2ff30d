#!/usr/bin/env python3
"""Benchmark piped queries: lines per second against a large metadata index, and the ratio to a floor.

Builds an index of N journal-article records (default 1,000,000) by bulk
insert into the metadata tables (rows computed by agency.metadata.index.prepare,
so the keys are exactly the load's), then answers a query file of M lines
(default 10,000) derived from indexed records with citation-style damage,
plus lines for articles that were never deposited. The floor is M bare indexed
look-ups by ISSN + volume + first page in the same database, one statement per
line; the goal is >= 2,000 lines/s on SQLite and >= 30% of the floor.

    .venv/bin/python bench/query.py [--records N] [--lines M] [--database-url URL] [--keep DIR]

With a PostgreSQL URL the index is built in a throwaway schema, dropped at the end.
With ``--keep DIR`` (SQLite) the index is built in DIR and kept; a later run with
the same DIR, records and seed reuses it (its build time is then not reported).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import bindparam, func, insert, select, text  # noqa: E402

from agency.db import open_database  # noqa: E402
from agency.metadata.identifiers import issn_check_char  # noqa: E402
from agency.metadata.extraction import Contributor, IdentifierText, RecordMetadata  # noqa: E402
from agency.metadata.index import LoadSource, journal_title_rows, prepare  # noqa: E402
from agency.models import (  # noqa: E402
    MetadataContributor, MetadataIdentifier, MetadataJournalTitle, MetadataLocator, MetadataRecord,
)
from agency.query.matcher import QueryMatcher  # noqa: E402
from agency.query.piped_format import Found, answer_line, parse_lines  # noqa: E402
from agency.models.base import Base  # noqa: E402
from agency.services import settle_startup_heap  # noqa: E402
from scratch import scratch_database  # noqa: E402

TABLES = (MetadataRecord.__table__, MetadataContributor.__table__, MetadataIdentifier.__table__,
          MetadataLocator.__table__, MetadataJournalTitle.__table__)
SURNAMES = ["Smith", "García", "Müller", "Nguyen", "Okafor", "Kowalski", "Tanaka", "O'Brien", "Ivanova", "Rossi",
            "Dubois", "Haddad", "Johansson", "Silva", "Kim", "Novak", "Zhang", "Patel", "Cohen", "Fischer",
            "Schröder", "Núñez", "Dvořák", "Horváth", "Petrović", "Yilmaz", "Lindqvist", "Achebe", "Moreau",
            "Nakamura", "Rahman", "Sørensen", "Weiß", "Bianchi", "Costa", "Jiménez", "Lefèvre", "Mäkinen"]
WORDS = ["Journal", "Annals", "Letters", "Reviews", "Archives", "Bulletin", "Advances", "Studies"]
SUBJECTS = ["Chemistry", "Biology", "Physics", "Linguistics", "Medicine", "Ecology", "Materials", "Economics",
            "Neuroscience", "Geography", "Psychology", "Engineering", "History", "Mathematics", "Optics"]
INSERT_CHUNK = 5000


def issn(n: int) -> str:
    first7 = f"{n:07d}"
    return f"{first7[:4]}-{first7[4:]}{issn_check_char(first7)}"


def journals(count: int, rnd: random.Random) -> list[tuple[str, str]]:
    return [(f"{rnd.choice(WORDS)} of {rnd.choice(SUBJECTS)} {n}", issn(1000000 + n * 7)) for n in range(count)]


def records(total: int, rnd: random.Random):
    """Journal articles: 50 per issue, 4 issues per volume, pages running through the volume."""
    titles = journals(max(1, total // 500), rnd)
    n = 0
    volume_of: dict[int, int] = {}
    while n < total:
        j = rnd.randrange(len(titles))
        title, journal_issn = titles[j]
        volume = volume_of[j] = volume_of.get(j, 0) + 1
        year = 1990 + volume % 35
        page = 1
        for issue in range(1, 5):
            for _ in range(50):
                if n >= total:
                    return
                n += 1
                names = [rnd.choice(SURNAMES) for _ in range(rnd.randrange(1, 4))]
                yield RecordMetadata(
                    seq=n, doi=f"10.5555/bench.{n}", url=f"https://example.org/{n}", timestamp="20240101000000",
                    content_type="journal_article", body_type="journal", title=f"Article {n}",
                    journal_title=title, volume=str(volume), issue=str(issue), first_page=str(page),
                    year=year, contributors=[Contributor("person", "author", "first" if i == 0 else "additional",
                                                         s, "A", None) for i, s in enumerate(names)],
                    identifiers=[IdentifierText("issn", journal_issn, "electronic")])
                page += rnd.randrange(3, 25)


def sample_records(total: int, seed: int) -> list[RecordMetadata]:
    """The records ``build_index`` samples, without building anything (for a kept index)."""
    rnd = random.Random(seed)
    samples = []
    for record in records(total, rnd):
        if rnd.random() < 0.02 or len(samples) < 100:
            samples.append(record)
    return samples


def build_index(db, total: int, seed: int) -> dict:
    rnd = random.Random(seed)
    source = LoadSource("bench/2024/01/1", "bench", 1, "Bench Press")
    started = time.perf_counter()
    with db.engine.begin() as conn:
        for table in reversed(TABLES):
            table.drop(conn, checkfirst=True)
        for table in TABLES:
            table.create(conn)
            for index in table.indexes:
                index.drop(conn)
        # The rest of the schema, empty: answers are mapped through aliases (alias_links), as in the service.
        Base.metadata.create_all(conn, checkfirst=True)
    rows, contributors, identifiers, locators = [], [], [], []
    samples, journal_titles = [], {}
    with db.engine.begin() as conn:
        for record in records(total, rnd):
            prepared = prepare(record, source)
            rows.append(prepared.row)
            contributors.extend(prepared.contributors)
            identifiers.extend(prepared.identifiers)
            locators.extend(prepared.locators)
            for row in journal_title_rows([prepared]):
                journal_titles[(row["issn"], row["title_key"])] = row
            if rnd.random() < 0.02 or len(samples) < 100:
                samples.append(record)
            if len(rows) >= INSERT_CHUNK:
                _flush(conn, rows, contributors, identifiers, locators, [])
        _flush(conn, rows, contributors, identifiers, locators, list(journal_titles.values()))
    inserted = time.perf_counter()
    with db.engine.begin() as conn:
        for table in TABLES:
            for index in table.indexes:
                index.create(conn)
        conn.execute(text("ANALYZE"))
    indexed = time.perf_counter()
    return {"insert_s": inserted - started, "index_s": indexed - inserted, "samples": samples}


def _flush(conn, rows: list, contributors: list, identifiers: list, locators: list, journal_titles: list) -> None:
    for table, batch in zip(TABLES, (rows, contributors, identifiers, locators, journal_titles)):
        if batch:
            conn.execute(insert(table), batch)
            batch.clear()


def query_lines(samples: list[RecordMetadata], count: int, seed: int) -> tuple[list[str], list[tuple]]:
    """Citation-style lines (with damage) for sampled records, 10% for articles never deposited."""
    rnd = random.Random(seed)
    lines, floor_keys = [], []
    for n in range(count):
        r = samples[rnd.randrange(len(samples))]
        journal_issn = r.identifiers[0].raw
        author, issue, year, title, volume, page = r.contributors[0].surname, r.issue, r.year, "", r.volume, r.first_page
        damage = n % 10
        if damage == 1:
            issue = ""
        elif damage == 2:
            year += 1
        elif damage == 3:
            author = author.replace("ü", "ue").replace("ö", "oe")
        elif damage == 4:
            title, journal_issn = r.journal_title, ""
        elif damage == 5:
            page = f"{page}-{int(page) + 9}"
        elif damage == 9:  # never deposited: a volume that does not exist
            volume = str(int(volume) + 100000)
        lines.append("|".join([journal_issn, title, author, volume, issue, page, str(year), "full_text", f"k{n}", ""]))
        floor_keys.append((r.identifiers[0].raw, r.volume, r.first_page))
    return lines, floor_keys


def run_floor(db, keys: list[tuple]) -> float:
    """Bare look-ups: one statement per line by ISSN + volume + first page, on the index built for it."""
    statement = (select(MetadataRecord.doi)
                 .join(MetadataLocator, MetadataLocator.doi_key == MetadataRecord.doi_key)
                 .where(MetadataLocator.issn == bindparam("issn"), MetadataLocator.volume_key == bindparam("volume"),
                        MetadataLocator.first_page_key == bindparam("page")))
    started = time.perf_counter()
    found = 0
    with db.engine.connect() as conn:
        for journal_issn, volume, page in keys:
            found += conn.execute(statement, {"issn": journal_issn, "volume": volume, "page": page}).first() is not None
    elapsed = time.perf_counter() - started
    assert found == len(keys), f"floor found {found} of {len(keys)}"
    return elapsed


def run_queries(db, lines: list[str], chunk: int) -> tuple[float, int, int]:
    matcher = QueryMatcher(db)
    found = answered = 0
    started = time.perf_counter()
    for start in range(0, len(lines), chunk):
        parsed = list(parse_lines(lines[start:start + chunk], start + 1))
        outcomes = matcher.answer(parsed)
        answers = [answer_line(p, o) for p, o in zip(parsed, outcomes)]
        answered += len(answers)
        found += sum(isinstance(o, Found) for o in outcomes)
    return time.perf_counter() - started, answered, found


def database_size(db) -> str:
    if db.dialect == "sqlite":
        path = Path(db.engine.url.database)
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    else:
        with db.engine.connect() as conn:
            size = sum(conn.execute(text("SELECT pg_total_relation_size(:t)"), {"t": t.name}).scalar() for t in TABLES)
    return f"{size / 1024 / 1024:.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=1000, help="lines answered together (the worker's chunk)")
    parser.add_argument("--database-url", default="", help="default: SQLite in a temporary folder")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="SQLite only: build the index in this folder and keep it; reuse it")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="agency-bench-query-"))
    kept, sqlite_file = None, workdir / "bench.db"
    if args.keep and not args.database_url:
        args.keep.mkdir(parents=True, exist_ok=True)
        kept = sqlite_file = args.keep / f"bench-{args.records}-{args.seed}.db"
    try:
        with scratch_database(args.database_url, sqlite_file) as url:
            measure(args, url, kept)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def measure(args, url: str, kept: Path | None) -> None:
    db = open_database(url)
    try:
        print(f"database: {db.dialect}; records: {args.records:,}; query lines: {args.lines:,}", flush=True)
        if kept is not None and (kept.parent / (kept.name + ".complete")).exists():
            built = {"samples": sample_records(args.records, args.seed)}
            print(f"index reused from {kept}, size {database_size(db)}", flush=True)
        else:
            built = build_index(db, args.records, args.seed)
            print(f"index build: insert {built['insert_s']:.1f} s, indexes {built['index_s']:.1f} s, "
                  f"size {database_size(db)}", flush=True)
            if kept is not None:
                (kept.parent / (kept.name + ".complete")).touch()
        with db.engine.connect() as conn:
            indexed = conn.execute(select(func.count()).select_from(MetadataRecord)).scalar()
        lines, floor_keys = query_lines(built["samples"], args.lines, args.seed + 1)
        settle_startup_heap()  # the samples are this script's: the collector must not walk them while the matcher runs
        floor_s = run_floor(db, floor_keys)
        query_s, answered, found = run_queries(db, lines, args.chunk)
        floor_rate, rate = len(floor_keys) / floor_s, answered / query_s
        print(f"indexed records: {indexed:,}")
        print(f"floor (bare ISSN+volume+page look-ups): {floor_rate:,.0f} look-ups/s")
        print(f"queries: {rate:,.0f} lines/s ({answered:,} lines in {query_s:.2f} s, {found:,} DOIs found, "
              f"~90% expected)")
        print(f"ratio to floor: {rate / floor_rate:.0%} (goal >= 30%; lines/s goal >= 2,000 on SQLite)")
    finally:
        db.engine.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
