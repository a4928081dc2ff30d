#!/usr/bin/env python3
"""Scale: an agency of N DOIs (default 10,000,000) next to one of 1,000,000, measured in the same run.

Builds, with bulk inserts (indexes dropped, then created; COPY on PostgreSQL), the rows a real load
of N journal articles leaves behind: handles and their URL values, citation keys,
submissions and their record results (one submission per 10,000 records), title
records, and the metadata database (rows computed by agency.metadata.index.prepare,
as the load computes them). The DOIs are spread over prefixes of ``--base``
DOIs each (10.5555, 10.5556, ...), so at every size one prefix holds 1,000,000.

The base agency is built first; the large one is a copy of it, grown. Both are
kept in ``--keep DIR`` (outside the repository) and reused when they exist.

With ``--database-url postgresql+psycopg://user@host:port/NAME`` the agencies are the databases
``NAME_{dois}_{seed}`` on that server (created and dropped from its ``postgres`` database; NAME itself is
never opened). The schema comes from the agency's migrations, the rows from the same generator as on
SQLite, through COPY with the filled tables' keys and indexes dropped (and the foreign keys to them),
then added back, then VACUUM ANALYZE. The large one is ``CREATE DATABASE ... TEMPLATE`` the base, grown,
as the SQLite file is copied: the base's rows (and whatever its measuring runs added) are not generated
twice, and both agencies hold the same first prefix. A comment on the database marks a finished build.
Then each size is measured in a fresh process (its peak RSS is its own):

- resolution: gunicorn (2 x cores + 1 sync workers), random DOIs of the whole agency,
  requests/s and p99 (bench/resolve.py's clients), and /healthz as the floor;
- Handle protocol resolution over UDP (`agency handle-server`, bench/handle_protocol.py's clients): req/s, p99;
- ``GET /api/handles?prefix=10.5555`` paging (pageSize 1,000): the first pages, and five deep ones (median);
- piped queries: bench/query.py's 10,000-line mix over the first prefix's journals (after 3,000 other lines), lines/s,
  and bench/query.py's floor of bare indexed look-ups;
  ``AGENCY_SQLITE_CACHE_MIB`` in the environment reaches every process measured (the servers, this one)
- the depositor report of 10.5555 (1,000,000 DOIs), rows/s (bench/depositor_report.py);
- the metadata load of 100,000 records (bench/mddb.py's batches), records/s;
- deposits through `agency serve`: a 10,000-record batch updating existing DOIs and one adding
  new DOIs, records/s from POST to completed (bench/deposit.py's whole path);
- database size on disk (pg_database_size on PostgreSQL), and peak RSS (VmHWM, and the anonymous part
  without SQLite's mapped pages) of the server, the gunicorn workers and the measuring process (query,
  report, load); not of PostgreSQL's own processes.

Prints each figure at both sizes and the ratio large/base against the goal (rates >= 0.8 x,
p99 <= 1.5 x). On a shared 2-core machine the 10,000,000 agency took ~29 minutes to
build and 14.65 GiB of disk (1,000,000: 4 minutes, 1.44 GiB); see docs/scaling.md for the figures.

    .venv/bin/python bench/scale.py --keep /work/tmp/scale                # 10,000,000 vs 1,000,000
    .venv/bin/python bench/scale.py --keep /tmp/s --dois 200000 --base 20000   # a quick rehearsal
    .venv/bin/python bench/scale.py --keep /work/tmp/scale-pg \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/scale      # scale_1000000_1, scale_10000000_1
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pickle
import random
import re
import resource
import shutil
import signal
import statistics
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

import psycopg
import requests
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from sqlalchemy import select, text  # noqa: E402
from sqlalchemy.dialects import sqlite as sqlite_dialect  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

import handle_protocol as handle_bench  # noqa: E402
from deposit import deposit_and_wait  # noqa: E402
import query as query_bench  # noqa: E402
import resolve as resolve_bench  # noqa: E402
from agency.accounts import create_account, registrant_by_id  # noqa: E402
from agency.admin.reports import as_csv, depositor_rows  # noqa: E402
from agency.config import load_settings  # noqa: E402
from agency.db import open_database  # noqa: E402
from agency.handles.doi_syntax import doi_key  # noqa: E402
from agency.handles.store import URL_INDEX, version_of  # noqa: E402
from agency.metadata.extraction import Contributor, IdentifierText, RecordMetadata  # noqa: E402
from agency.metadata.index import LoadSource, journal_title_rows, prepare  # noqa: E402
from agency.models import Account, Handle, Prefix  # noqa: E402
from agency.models.types import utcnow  # noqa: E402
from agency.services import build_agency, settle_startup_heap  # noqa: E402
from generate import write_batch  # noqa: E402
from live_server import agency_env, start_server  # noqa: E402
from mddb import write_log  # noqa: E402
from scratch import free_port  # noqa: E402

FIRST_PREFIX = 5555
PER_SUBMISSION = 10_000
CHUNK = 20_000
PASSWORD = "bench-password"
SECRET = "scale-bench-secret-key"
FILLED = ("handles", "handle_values", "citation_keys", "record_results", "title_records", "title_identifiers",
          "metadata_records", "metadata_contributors", "metadata_identifiers", "metadata_locators",
          "metadata_journal_titles")


def prefix_of(number: int, base: int) -> str:
    return f"10.{FIRST_PREFIX + number // base}"


def doi_of(number: int, base: int) -> str:
    return f"{prefix_of(number, base)}/bench.{number:08d}"


# --- where an agency lives ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Agency:
    """One built agency: a SQLite file in ``--keep``, or a PostgreSQL database on the ``--database-url`` server."""

    url: str
    label: str  # the file's stem, or the database's name: names its work folder

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def path(self) -> Path:
        return Path(make_url(self.url).database)

    @property
    def conninfo(self) -> str:
        return make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)

    def size_bytes(self) -> int:
        if self.is_sqlite:
            return sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*"))
        with psycopg.connect(self.conninfo) as conn:
            return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def agency_at(keep: Path, database_url: str | None, dois: int, seed: int) -> Agency:
    """The agency of ``dois`` DOIs: ``agency-{dois}-{seed}.db`` in keep, or the database ``{name}_{dois}_{seed}``
    beside the one ``--database-url`` names (which is only a prefix: the bench never writes to it)."""
    if database_url is None:
        path = keep / f"agency-{dois}-{seed}.db"
        return Agency(f"sqlite:///{path}", path.stem)
    url = make_url(database_url)
    name = f"{url.database}_{dois}_{seed}"
    return Agency(url.set(database=name).render_as_string(hide_password=False), name)


def server_conninfo(agency: Agency) -> str:
    """The ``postgres`` maintenance database of the agency's server: databases are created and dropped from it."""
    return make_url(agency.url).set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False)


COMPLETE = "bench/scale.py: complete"


def is_complete(agency: Agency, keep: Path) -> bool:
    """A SQLite agency has a ``.complete`` file beside it; a PostgreSQL one a comment on its database."""
    if agency.is_sqlite:
        return (keep / (agency.path.name + ".complete")).exists()
    with psycopg.connect(server_conninfo(agency), autocommit=True) as conn:
        row = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                           (agency.label,)).fetchone()
    return row is not None and row[0] == COMPLETE


def mark_complete(agency: Agency, keep: Path) -> None:
    if agency.is_sqlite:
        (keep / (agency.path.name + ".complete")).touch()
        return
    with psycopg.connect(server_conninfo(agency), autocommit=True) as conn:
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(agency.label),
                                                                    sql.Literal(COMPLETE)))


def drop_database(agency: Agency) -> None:
    with psycopg.connect(server_conninfo(agency), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(agency.label)))


def start_over(agency: Agency, keep: Path, template: Agency | None = None) -> None:
    """Removes what an unfinished build left; a copy of ``template`` (file copy, or CREATE DATABASE ... TEMPLATE)
    or nothing (the schema comes from the migrations) in its place."""
    if agency.is_sqlite:
        for p in keep.glob(agency.path.name + "*"):
            p.unlink()
        if template is not None:
            shutil.copyfile(template.path, agency.path)
        return
    drop_database(agency)
    with psycopg.connect(server_conninfo(agency), autocommit=True) as conn:
        if template is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(agency.label)))
        else:  # FILE_COPY: copies the files after a checkpoint, rather than writing the whole database to the WAL
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                sql.Identifier(agency.label), sql.Identifier(template.label)))


# --- building ---------------------------------------------------------------------------------------------

def is_sampled(number: int, base: int) -> bool:
    """The records of the first prefix that the piped query lines are made of (the updates leave them alone)."""
    return number < base and number % 50 == 7


def still_indexed(agencies: list[Agency], samples: list) -> list:
    """The samples whose ISSN + volume + first page still find their DOI in every agency (an agency kept from
    before updates spared them may have had some re-deposited with other metadata)."""
    kept = set(range(len(samples)))
    look_up = text("SELECT doi_key FROM metadata_locators WHERE issn = :issn AND volume_key = :volume AND "
                   "first_page_key = :page")
    for agency in agencies:
        db = open_database(agency.url)
        try:
            with db.engine.connect() as conn:
                for n, record in enumerate(samples):
                    row = conn.execute(look_up, {"issn": record.identifiers[0].raw, "volume": record.volume,
                                                 "page": record.first_page}).fetchone()
                    if row is None or row[0] != doi_key(record.doi):
                        kept.discard(n)
        finally:
            db.engine.dispose()
    return [samples[n] for n in sorted(kept)]


def journal_issn(journal: int) -> str:
    return query_bench.issn(1_000_000 + journal * 7)


def block_records(block: int, base: int, seed: int):
    """The records of prefix ``block``: bench/query.py's shape (50 articles an issue, 4 issues a volume),
    with journals of their own (so an ISSN + volume + page names one article in the whole agency)."""
    rnd = random.Random(seed * 1_000_003 + block)
    per_block = max(1, base // 500)
    titles = [(f"{rnd.choice(query_bench.WORDS)} of {rnd.choice(query_bench.SUBJECTS)} {block}.{j}",
               journal_issn(block * per_block + j)) for j in range(per_block)]
    volume_of: dict[int, int] = {}
    n, end = block * base, (block + 1) * base
    while n < end:
        j = rnd.randrange(per_block)
        title, issn = titles[j]
        volume = volume_of[j] = volume_of.get(j, 0) + 1
        year, page = 1990 + volume % 35, 1
        for issue in range(1, 5):
            for _ in range(50):
                if n >= end:
                    return
                names = [rnd.choice(query_bench.SURNAMES) for _ in range(rnd.randrange(1, 4))]
                yield block * per_block + j, RecordMetadata(
                    seq=n % PER_SUBMISSION + 1, doi=doi_of(n, base), url=f"https://example.org/{n}",
                    timestamp="20240101000000", content_type="journal_article", body_type="journal",
                    title=f"Article {n}", journal_title=title, volume=str(volume), issue=str(issue),
                    first_page=str(page), year=year,
                    contributors=[Contributor("person", "author", "first" if i == 0 else "additional", s, "A", None)
                                  for i, s in enumerate(names)],
                    identifiers=[IdentifierText("issn", issn, "electronic")])
                n += 1
                page += rnd.randrange(3, 25)


class Inserter:
    """executemany of plain tuples on SQLite's driver (the bulk path: no SQLAlchemy per row)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.pending: dict[str, list[dict]] = {}
        self.rows = 0

    def add(self, table: str, rows) -> None:
        self.pending.setdefault(table, []).extend(rows)

    def flush(self) -> None:
        for table, rows in self.pending.items():
            if not rows:
                continue
            names = list(rows[0])
            getter = itemgetter(*names)
            self.conn.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                                  [getter(r) for r in rows])
            self.rows += len(rows)
            rows.clear()


class Copier(Inserter):
    """COPY ... FROM STDIN on PostgreSQL (psycopg's ``cursor.copy``): the same rows, one COPY per table per chunk."""

    def __init__(self, conn: psycopg.Connection) -> None:
        super().__init__(conn)  # type: ignore[arg-type]

    def flush(self) -> None:
        with self.conn.cursor() as cursor:
            for table, rows in self.pending.items():
                if not rows:
                    continue
                names = list(rows[0])
                getter = itemgetter(*names)
                with cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(getter(row))
                self.rows += len(rows)
                rows.clear()


def add_dois(inserter: Inserter, start: int, end: int, base: int, seed: int, account_id: int, now,
             last_title_id: int, known_issns: set[str]) -> tuple[list[RecordMetadata], dict[int, str]]:
    """The rows of DOIs [start, end), handed to ``inserter`` (flushed every CHUNK DOIs): the one row generator of
    both builders. ``now`` is the timestamp as the database's driver takes it. Returns the sampled records and
    the submissions the records name (id -> folder)."""
    blocks = -(-end // base)
    started = time.perf_counter()
    submissions: dict[int, str] = {}
    samples: list[RecordMetadata] = []
    journals_seen: set[int] = set()
    title_id = last_title_id
    prepared_rows = 0
    for block in range(start // base, blocks):
        for journal, record in block_records(block, base, seed):
            number = int(record.doi.rsplit(".", 1)[1])
            if number < start or number >= end:
                continue
            submission_id = 1 + number // PER_SUBMISSION
            folder = f"bench/2024/01/{submission_id}"
            if submission_id not in submissions:
                submissions[submission_id] = folder
            key = doi_key(record.doi)
            prepared = prepare(record, LoadSource(folder, "bench", submission_id, "Bench Press"))
            prepared.row["indexed_at"] = now
            inserter.add("handles", ({"key": key, "name": record.doi, "prefix": prefix_of(number, base),
                                      "version": version_of(record.timestamp), "revision": 1,
                                      "account_id": account_id, "submission_id": submission_id,
                                      "interface": "crossref", "created_at": now, "updated_at": now},))
            inserter.add("handle_values", ({"handle_key": key, "idx": URL_INDEX, "type": "URL",
                                            "data": record.url.encode(), "ttl": 86400, "timestamp": now},))
            issn = record.identifiers[0].raw
            inserter.add("citation_keys", ({"doi_key": key, "doi": record.doi, "key": (
                f"{issn}|{record.volume}|{record.issue}|{record.first_page}|{record.year}")},))
            inserter.add("record_results", ({"submission_id": submission_id, "seq": record.seq, "doi": record.doi,
                                             "status": "Success", "message": "Successfully added",
                                             "outcome": "added"},))
            inserter.add("metadata_records", (prepared.row,))
            inserter.add("metadata_contributors", prepared.contributors)
            inserter.add("metadata_identifiers", prepared.identifiers)
            inserter.add("metadata_locators", prepared.locators)
            if journal not in journals_seen:
                journals_seen.add(journal)
                inserter.add("metadata_journal_titles", journal_title_rows([prepared]))
                if issn not in known_issns:
                    known_issns.add(issn)
                    title_id += 1
                    inserter.add("title_records", ({"id": title_id, "kind": "journal", "title": record.journal_title,
                                                    "account_id": account_id, "created_at": now,
                                                    "updated_at": now},))
                    inserter.add("title_identifiers", ({"kind": "issn", "value": issn, "title_id": title_id},))
            if is_sampled(number, base):
                samples.append(record)
            prepared_rows += 1
            if prepared_rows % CHUNK == 0:
                inserter.flush()
                if prepared_rows % 1_000_000 == 0:
                    rate = prepared_rows / (time.perf_counter() - started)
                    print(f"  {prepared_rows:,} DOIs inserted ({rate:,.0f}/s)", flush=True)
    inserter.flush()
    return samples, submissions


def submission_rows(submissions: dict[int, str], existing: set[int], account_id: int, now) -> list[dict]:
    """One completed, indexed deposit per PER_SUBMISSION records (the ids a kept agency already has are kept)."""
    return [{"id": sid, "account_id": account_id, "kind": "deposit", "operation": "doMDUpload",
             "status": "completed", "file_name": "batch.xml", "doi_batch_id": f"bench-{sid}", "storage_path": folder,
             "byte_size": 0, "sha256": "", "received_at": now, "started_at": now, "completed_at": now,
             "record_count": PER_SUBMISSION, "success_count": PER_SUBMISSION, "warning_count": 0,
             "failure_count": 0, "records_done": PER_SUBMISSION, "attempts": 0, "index_status": "indexed",
             "indexed_at": now, "batch_timestamp": "20240101000000"}
            for sid, folder in submissions.items() if sid not in existing]


def stored_datetime(value) -> str:
    processor = Handle.__table__.c.created_at.type.bind_processor(sqlite_dialect.dialect())
    return processor(value) if processor else value


def schema_and_account(agency: Agency, blocks: int, work: Path) -> int:
    """The migrated schema, the account owning every prefix, the first prefix's record with a secret key."""
    settings = scale_settings(agency, work)
    svc = build_agency(settings)
    prefixes = [f"10.{FIRST_PREFIX + b}" for b in range(blocks)]
    with svc.db.transaction() as session:
        account = session.scalar(select(Account).where(Account.login == "bench"))
        if account is None:
            registrant = create_account(session, svc.passwords, "bench", "bench@example.org", PASSWORD,
                                        prefixes[:1])
            account_id = registrant.id
            fresh = True
        else:
            account_id, fresh = account.id, False
        owned = set(session.scalars(select(Prefix.prefix)))
        for prefix in prefixes:
            if prefix not in owned:
                session.add(Prefix(prefix=prefix, account_id=account_id))
    if fresh:
        from agency.handles.prefix_records import create_prefix_record, parse_reference, set_prefix_secret

        with svc.db.transaction() as session:
            create_prefix_record(session, prefixes[0], "bench", ra_admin=parse_reference(settings.handle_ra_admin),
                                 service_handle=settings.handle_service, ttl=settings.handle_ttl,
                                 actor="operator:bench")
            set_prefix_secret(session, prefixes[0], SECRET, actor="operator:bench")
    svc.db.engine.dispose()
    return account_id


def fill_sqlite(agency: Agency, start: int, end: int, base: int, seed: int, account_id: int) -> dict:
    """Bulk-insert DOIs [start, end): indexes dropped first, created after. Returns timings and samples."""
    now = stored_datetime(utcnow())
    conn = sqlite3.connect(agency.path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA temp_store=FILE")
    indexes = conn.execute(f"SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL AND "
                           f"tbl_name IN ({', '.join('?' * len(FILLED))})", FILLED).fetchall()
    started = time.perf_counter()
    conn.execute("BEGIN")
    for name, _sql in indexes:
        conn.execute(f"DROP INDEX {name}")
    inserter = Inserter(conn)
    last_title_id = conn.execute("SELECT max(id) FROM title_records").fetchone()[0] or 0
    known_issns = {row[0] for row in conn.execute("SELECT value FROM title_identifiers WHERE kind = 'issn'")}
    samples, submissions = add_dois(inserter, start, end, base, seed, account_id, now, last_title_id, known_issns)
    existing = {row[0] for row in conn.execute("SELECT id FROM submissions")}
    inserter.add("submissions", submission_rows(submissions, existing, account_id, now))
    inserter.flush()
    conn.execute("COMMIT")
    inserted = time.perf_counter()
    for _name, sql_text in indexes:
        conn.execute(sql_text)
    conn.execute("ANALYZE")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    return {"insert_s": inserted - started, "index_s": time.perf_counter() - inserted, "rows": inserter.rows,
            "samples": samples}


# The keys and indexes of the filled tables (and the foreign keys that refer to them): dropped before the
# COPY, added after it in the reverse order (indexes, then primary and unique keys, then foreign keys).
PG_CONSTRAINTS = """
SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype FROM pg_constraint
WHERE (contype IN ('p', 'u', 'f') AND conrelid = ANY(%(tables)s::regclass[]))
   OR (contype = 'f' AND confrelid = ANY(%(tables)s::regclass[]))
ORDER BY contype = 'f' DESC, conname
"""
PG_INDEXES = """
SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index
WHERE indrelid = ANY(%(tables)s::regclass[])
  AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = indexrelid)
"""
PG_SEQUENCES = """
SELECT table_name, column_name, pg_get_serial_sequence(quote_ident(table_name), column_name)
FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ANY(%(tables)s)
  AND pg_get_serial_sequence(quote_ident(table_name), column_name) IS NOT NULL
"""


def fill_postgres(agency: Agency, start: int, end: int, base: int, seed: int, account_id: int) -> dict:
    """COPY DOIs [start, end) in one transaction, keys and indexes dropped first and added after; the sequences
    moved past the ids given; then VACUUM ANALYZE (statistics, and the visibility map index-only scans need)."""
    now = utcnow()
    tables = list(FILLED) + ["submissions"]
    with psycopg.connect(agency.conninfo) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")  # index builds sort in memory (the server's default: 64MB)
        conn.execute("SET synchronous_commit = off")
        constraints = conn.execute(PG_CONSTRAINTS, {"tables": list(FILLED)}).fetchall()
        indexes = conn.execute(PG_INDEXES, {"tables": list(FILLED)}).fetchall()
        started = time.perf_counter()
        for table, name, _definition, _kind in constraints:
            conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(table),
                                                                           sql.Identifier(name)))
        for name, _definition in indexes:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        inserter = Copier(conn)
        last_title_id = conn.execute("SELECT coalesce(max(id), 0) FROM title_records").fetchone()[0]
        known_issns = {row[0] for row in conn.execute("SELECT value FROM title_identifiers WHERE kind = 'issn'")}
        samples, submissions = add_dois(inserter, start, end, base, seed, account_id, now, last_title_id,
                                        known_issns)
        existing = {row[0] for row in conn.execute("SELECT id FROM submissions")}
        inserter.add("submissions", submission_rows(submissions, existing, account_id, now))
        inserter.flush()
        for table, column, sequence in conn.execute(PG_SEQUENCES, {"tables": tables}).fetchall():
            conn.execute(sql.SQL("SELECT setval({}, coalesce((SELECT max({}) FROM {}), 0) + 1, false)").format(
                sql.Literal(sequence), sql.Identifier(column), sql.Identifier(table)))
        inserted = time.perf_counter()
        for _name, definition in indexes:
            conn.execute(definition)
        for table, name, definition, _kind in reversed(constraints):
            conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(sql.Identifier(table),
                                                                           sql.Identifier(name))
                         + sql.SQL(definition))
        conn.commit()
        indexed = time.perf_counter()
    with psycopg.connect(agency.conninfo, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    return {"insert_s": inserted - started, "index_s": indexed - inserted,
            "analyze_s": time.perf_counter() - indexed, "rows": inserter.rows, "samples": samples}


def scale_settings(agency: Agency, work: Path, **extra):
    """A kept PostgreSQL agency upgrades its schema, as a SQLite one does; the page cache is the environment's."""
    return load_settings(environ={}, data_dir=work / "var", batch_dir=work / "batches",
                         database_url=agency.url, run_worker=False, run_scheduler=False,
                         password_time_cost=1, db_auto_upgrade=True,
                         sqlite_cache_mib=load_settings().sqlite_cache_mib, **extra)


def build_one(agency: Agency, keep: Path, start: int, end: int, base: int, seed: int,
              template: Agency | None) -> dict:
    """Agency [0, end): a fresh schema filled with [0, end), or a copy of ``template`` grown by [start, end)."""
    started = time.perf_counter()
    start_over(agency, keep, template)
    copied = time.perf_counter() - started
    account_id = schema_and_account(agency, -(-end // base), keep / "work")
    fill = fill_sqlite if agency.is_sqlite else fill_postgres
    built = fill(agency, start, end, base, seed, account_id)
    built.update(copy_s=copied, total_s=time.perf_counter() - started)
    gib = agency.size_bytes() / 2**30
    doing = "grew to" if template else "built"
    analyze = f", vacuum analyze {built['analyze_s']:.0f} s" if "analyze_s" in built else ""
    copy = f"copy {copied:.0f} s, " if template else ""
    print(f"{doing} {end:,} DOIs in {built['total_s']:.0f} s ({copy}insert {built['insert_s']:.0f} s at "
          f"{(end - start) / built['insert_s']:,.0f} DOIs/s, {built['rows'] / built['insert_s']:,.0f} rows/s; indexes "
          f"{built['index_s']:.0f} s{analyze}; {built['rows']:,} rows): {gib:.2f} GiB", flush=True)
    mark_complete(agency, keep)
    return built


def build(keep: Path, base: int, total: int, seed: int, database_url: str | None) -> tuple[Agency, Agency]:
    """The base agency, then the large one as a copy of it grown (a SQLite file copied, a PostgreSQL database
    created with the base as TEMPLATE); each reused when a build of it completed."""
    base_agency, large = agency_at(keep, database_url, base, seed), agency_at(keep, database_url, total, seed)
    samples_file = keep / f"samples-{base}-{seed}.pickle"
    if not (is_complete(base_agency, keep) and samples_file.exists()):
        built = build_one(base_agency, keep, 0, base, base, seed, None)
        samples_file.write_bytes(pickle.dumps(built["samples"]))
    else:
        print(f"reused {base_agency.label} ({base_agency.size_bytes() / 2**30:.2f} GiB)", flush=True)
    if total > base and not is_complete(large, keep):
        build_one(large, keep, base, total, base, seed, base_agency)
    elif total > base:
        print(f"reused {large.label} ({large.size_bytes() / 2**30:.2f} GiB)", flush=True)
    return base_agency, large


# --- measuring (one process per size) ----------------------------------------------------------------------

def status_kb(pid: int | str, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            pass
    return out


def measure_resolution(agency: Agency, work: Path, total: int, base: int, seconds: float, out: dict) -> None:
    settings = scale_settings(agency, work)
    os.environ["AGENCY_HANDLE_REST_INSECURE_WRITES"] = "1"
    resolve_bench.doi_of = lambda number: doi_of(number, base)  # the clients fork: they see this
    workers = 2 * (os.cpu_count() or 1) + 1
    port = free_port()
    process = resolve_bench.start_gunicorn(settings, workers, port, work / "gunicorn.log")
    try:
        clients = 2 * (os.cpu_count() or 1)
        rounds: dict[str, list[dict]] = {"trivial": [], "resolve": []}
        with multiprocessing.Pool(clients) as pool:
            resolve_bench.measure(pool, port, "trivial", 1.0, clients, total, process.pid)
            resolve_bench.measure(pool, port, "resolve", 2.0, clients, total, process.pid)
            for _ in range(2):
                for route in ("trivial", "resolve"):
                    rounds[route].append(resolve_bench.measure(pool, port, route, seconds / 2, clients, total,
                                                               process.pid))
        trivial, resolve = resolve_bench.merged(rounds["trivial"]), resolve_bench.merged(rounds["resolve"])
        out["resolve_rps"] = resolve["rps"]
        out["resolve_p99_ms"] = resolve_bench.percentile(resolve["latencies"], 99) * 1000
        out["resolve_errors"] = resolve["errors"]
        out["healthz_rps"] = trivial["rps"]
        out["resolve_cpu_us"] = resolve["cpu_us"]
        measure_paging(port, out)
        workers_now = children_of(process.pid)
        out["gunicorn_worker_hwm_mb"] = max(status_kb(p, "VmHWM") for p in workers_now) / 1024
        out["gunicorn_worker_anon_mb"] = max(status_kb(p, "RssAnon") for p in workers_now) / 1024
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def measure_handle_protocol(agency: Agency, work: Path, total: int, base: int, seconds: float, out: dict) -> None:
    """OC_RESOLUTION over UDP against `agency handle-server` (bench/handle_protocol.py's clients), random DOIs."""
    handle_bench.doi_of = lambda number: doi_of(number, base)
    env = dict(os.environ, AGENCY_DATA_DIR=str(work / "var"), AGENCY_BATCH_DIR=str(work / "batches"),
               AGENCY_DATABASE_URL=agency.url, AGENCY_RUN_WORKER="0", AGENCY_RUN_SCHEDULER="0")
    port = free_port()
    clients = 2 * (os.cpu_count() or 1)
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        server = handle_bench.start([sys.executable, "-m", "agency.cli", "handle-server", "--port", str(port)], env,
                                    "handle protocol on", work / "handle-server.log")
        try:
            handle_bench.measure(pool, handle_bench.client_loop, "udp", port, 1.0, clients, total,
                                 server.pid)  # warm-up
            result = handle_bench.measure(pool, handle_bench.client_loop, "udp", port, seconds, clients, total,
                                          server.pid)
        finally:
            handle_bench.stop(server)
    out["udp_rps"] = result["rps"]
    out["udp_p99_ms"] = resolve_bench.percentile(result["latencies"], 99) * 1000
    out["udp_errors"] = result["errors"]


def measure_paging(port: int, out: dict) -> None:
    """``GET /api/handles?prefix=10.5555`` pages of 1,000 names: the first 20 (fewer full ones in a rehearsal's
    small prefix), then five around 90% of the prefix (their median)."""
    auth = (f"300%3A0.NA%2F10.{FIRST_PREFIX}", SECRET)
    url = f"http://127.0.0.1:{port}/api/handles"
    session = requests.Session()
    times = []
    total = 21_000
    page = 0
    while page < min(21, total // 1000):
        started = time.perf_counter()
        answer = session.get(url, params={"prefix": f"10.{FIRST_PREFIX}", "page": page, "pageSize": 1000},
                             auth=auth, timeout=600)
        elapsed = time.perf_counter() - started
        answer.raise_for_status()
        body = answer.json()
        assert len(body["handles"]) == 1000, body.get("message")
        total = int(body["totalCount"])
        if page:
            times.append(elapsed)  # the first request warms the connection
        page += 1
    deep = int(total * 0.9) // 1000
    deep_times = []
    for offset in range(-2, 3):  # five deep pages around 90% (one request alone is one noisy sample)
        started = time.perf_counter()
        answer = session.get(url, params={"prefix": f"10.{FIRST_PREFIX}", "page": deep + offset, "pageSize": 1000},
                             auth=auth, timeout=600)
        deep_times.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    out["paging_deep_ms"] = statistics.median(deep_times)
    out["paging_pages_s"] = len(times) / sum(times)
    out["paging_prefix_total"] = total


def measure_queries(agency: Agency, samples: list, out: dict) -> None:
    # The samples are this script's, not the service's: keep the garbage collector from walking
    # them over and over while it times the matcher (they cost it 10-15% of the run).
    settle_startup_heap()
    db = open_database(agency.url, load_settings().sqlite_cache_mib)  # as the agency's own processes would
    try:
        warm_lines, _ = query_bench.query_lines(samples, 3_000, 3)  # a running service's cache is warm:
        query_bench.run_queries(db, warm_lines, 1000)               # other lines first, not measured
        lines, floor_keys = query_bench.query_lines(samples, 10_000, 2)
        floor_s = query_bench.run_floor(db, floor_keys)
        query_s, answered, found = query_bench.run_queries(db, lines, 1000)
        out["query_lines_s"] = answered / query_s
        # The same mix again: the pages its first pass read are cached now (this VM's kernel pages out what a
        # minute leaves untouched, docs/scaling.md), so this is the figure of a server whose RAM holds them.
        again_s, _answered, _found = query_bench.run_queries(db, lines, 1000)
        out["query_again_lines_s"] = answered / again_s
        out["query_floor_s"] = len(floor_keys) / floor_s
        out["query_found"] = found
    finally:
        db.engine.dispose()


def measure_report(agency: Agency, work: Path, out: dict) -> None:
    svc = build_agency(scale_settings(agency, work))
    try:
        with svc.db.sessions() as session:
            account_id = session.scalar(select(Account.id).where(Account.login == "bench"))
            registrant = registrant_by_id(session, account_id)
        started = time.perf_counter()
        lines = 0
        with open(os.devnull, "w") as sink:
            for piece in as_csv(depositor_rows(svc.db, registrant, f"10.{FIRST_PREFIX}")):
                sink.write(piece)
                lines += 1
        out["report_rows_s"] = (lines - 1) / (time.perf_counter() - started)
        out["report_rows"] = lines - 1
    finally:
        svc.db.engine.dispose()


def measure_load(agency: Agency, work: Path, run_id: int, out: dict, records: int = 100_000) -> None:
    batch_dir = work / f"mddb-{run_id}"
    made = 0
    for number in range(records // 10_000):
        submission_id = run_id * 100 + number
        folder = batch_dir / "bench" / "2026" / "11" / str(submission_id)
        folder.mkdir(parents=True)
        dois = write_batch(folder / "batch.xml", 10_000, prefix=f"10.{FIRST_PREFIX}", seed=submission_id,
                           batch_id=f"scale-{submission_id}")
        write_log(folder / "log.xml", submission_id, f"scale-{submission_id}", dois)
        made += len(dois)
    svc = build_agency(load_settings(environ={}, data_dir=work / "var", batch_dir=batch_dir,
                                     database_url=agency.url, run_worker=False, run_scheduler=False,
                                     password_time_cost=1, db_auto_upgrade=True))
    try:
        svc.mddb
        started = time.perf_counter()
        report = svc.mddb.run(mail=False)
        elapsed = time.perf_counter() - started
        indexed = sum(f.indexed for f in report.loaded)
        assert indexed == made, report.summary()  # earlier runs' deposits may be counted as failed (no log here)
        out["load_rec_s"] = indexed / elapsed
    finally:
        svc.db.engine.dispose()
        shutil.rmtree(batch_dir, ignore_errors=True)


def renamed_updates(path: Path, base: int, run_id: int) -> None:
    """A 10,000-record batch whose DOIs are existing ones of the first prefix, spread over it (stride 97),
    timestamped now (newer than anything stored)."""
    timestamp = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + f"{run_id % 100000:05d}"
    write_batch(path, 10_000, prefix=f"10.{FIRST_PREFIX}", seed=1, timestamp=timestamp,
                batch_id=f"scale-updates-{run_id}")
    picked = []  # distinct (97 is prime to base), never a record the query lines are made of
    for step in range(base):
        number = step * 97 % base
        if not is_sampled(number, base):
            picked.append(number)
            if len(picked) == 10_000:
                break
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"/bench\.1\.(\d+)</doi>", lambda m: f"/bench.{picked[int(m.group(1)) - 1]:08d}</doi>", text)
    path.write_text(text, encoding="utf-8")


def measure_deposits(agency: Agency, work: Path, base: int, run_id: int, out: dict) -> None:
    folder = work / f"deposit-{run_id}"
    folder.mkdir(parents=True)
    env = agency_env(work, agency.url, AGENCY_MAX_BATCH_BYTES=str(2 * 1024**3), AGENCY_RUN_SCHEDULER="0")
    server = start_server(env)
    try:
        auth = ("bench", PASSWORD)
        warm = folder / "warm.xml"
        write_batch(warm, 10, prefix=f"10.{FIRST_PREFIX}", seed=run_id, batch_id=f"warm-{run_id}")
        requests.post(server.url + "/v1/deposits?wait=60", data=warm.read_bytes(), auth=auth,
                      headers={"Content-Type": "application/xml"}, timeout=600).raise_for_status()
        updates, new = folder / "updates.xml", folder / "new.xml"
        renamed_updates(updates, base, run_id)
        write_batch(new, 10_000, prefix=f"10.{FIRST_PREFIX}", seed=run_id + 1, batch_id=f"scale-new-{run_id}")
        for name, batch, outcome in (("updates", updates, "updated"), ("new", new, "added")):
            started = time.perf_counter()
            body = deposit_and_wait(server.url, batch, auth)
            elapsed = time.perf_counter() - started
            counts = body["counts"]
            assert counts["success_count"] + counts["warning_count"] == 10_000, (name, counts)
            out[f"deposit_{name}_rec_s"] = 10_000 / elapsed
        out["server_hwm_mb"] = status_kb(server.process.pid, "VmHWM") / 1024
        out["server_anon_mb"] = status_kb(server.process.pid, "RssAnon") / 1024
    finally:
        server.stop()
    svc = build_agency(scale_settings(agency, work))  # index the deposits, as the scheduler would: a kept
    try:                                           # agency stays consistent for the next run
        svc.mddb.run(mail=False)
    finally:
        svc.db.engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)


def measure_one(agency: Agency, keep: Path, base: int, total: int, seed: int, seconds: float, run_id: int) -> dict:
    work = keep / f"work-{agency.label}"
    work.mkdir(parents=True, exist_ok=True)
    samples = pickle.loads((keep / f"run-samples-{base}-{seed}.pickle").read_bytes())
    out: dict = {"dois": total}
    # A kept agency's schema is upgraded before any server starts: gunicorn's processes refuse a PostgreSQL
    # schema that is behind.
    build_agency(scale_settings(agency, work)).db.engine.dispose()
    steps = (("resolution and paging", lambda: measure_resolution(agency, work, total, base, seconds, out)),
             ("Handle protocol", lambda: measure_handle_protocol(agency, work, total, base, seconds / 2, out)),
             ("piped queries", lambda: measure_queries(agency, samples, out)),
             ("depositor report", lambda: measure_report(agency, work, out)),
             ("metadata load", lambda: measure_load(agency, work, run_id, out)),
             ("deposits", lambda: measure_deposits(agency, work, base, run_id, out)))
    for name, step in steps:
        started = time.perf_counter()
        step()
        print(f"  [{total:,}] {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    out["resolve_vs_healthz"] = out["resolve_rps"] / out["healthz_rps"]
    out["query_vs_floor"] = out["query_lines_s"] / out["query_floor_s"]
    if agency.is_sqlite:
        with sqlite3.connect(agency.path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    out["disk_gib"] = agency.size_bytes() / 2**30
    out["bench_hwm_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["bench_anon_mb"] = status_kb("self", "RssAnon") / 1024
    return out


ROWS = (  # key, label, unit, kind: rate (higher is better, goal >= 0.8x) | latency (goal <= 1.5x) | size
    ("deposit_updates_rec_s", "deposit 10,000 updates (whole path)", "rec/s", "rate"),
    ("deposit_new_rec_s", "deposit 10,000 new DOIs (whole path)", "rec/s", "rate"),
    ("query_lines_s", "piped queries, 10,000-line mix", "lines/s", "rate"),
    ("query_again_lines_s", "  the same mix again (its pages cached)", "lines/s", "rate"),
    ("query_floor_s", "  floor: bare ISSN+volume+page look-ups", "/s", "rate"),
    ("query_vs_floor", "  queries / floor, same size", "", "rate"),
    ("resolve_rps", "resolution GET /{doi} (gunicorn)", "req/s", "rate"),
    ("resolve_vs_healthz", "  resolution / floor, same size (noise-free-er)", "", "rate"),
    ("resolve_p99_ms", "resolution p99", "ms", "latency"),
    ("healthz_rps", "  floor: /healthz", "req/s", "rate"),
    ("udp_rps", "Handle protocol UDP resolution", "req/s", "rate"),
    ("udp_p99_ms", "Handle protocol UDP p99", "ms", "latency"),
    ("resolve_cpu_us", "resolution server CPU per request", "us", "latency"),
    ("paging_pages_s", "/api/handles?prefix= pages of 1,000 (first 20)", "pages/s", "rate"),
    ("paging_deep_ms", "/api/handles?prefix= page at 90% (median of 5)", "ms", "latency"),
    ("load_rec_s", "metadata load, 100,000 records", "rec/s", "rate"),
    ("report_rows_s", "depositor report, prefix of the base size", "rows/s", "rate"),
    ("disk_gib", "database on disk", "GiB", "size"),
    ("server_anon_mb", "agency serve (worker) RssAnon after deposits", "MB", "size"),
    ("server_hwm_mb", "agency serve VmHWM (counts mapped DB pages)", "MB", "size"),
    ("gunicorn_worker_anon_mb", "gunicorn worker RssAnon (max)", "MB", "size"),
    ("bench_anon_mb", "query/report/load process RssAnon", "MB", "size"),
)


def print_table(small: dict, large: dict) -> None:
    print(f"\n{'figure':<50} {small['dois']:>12,} {large['dois']:>12,}  ratio  goal")
    for key, label, unit, kind in ROWS:
        a, b = small.get(key), large.get(key)
        if a is None or b is None:
            continue
        ratio = b / a if a else float("nan")
        if kind == "rate":
            goal = f">= 0.8x {'ok' if ratio >= 0.8 else 'MISSED'}"
        elif kind == "latency":
            goal = f"<= 1.5x {'ok' if ratio <= 1.5 else 'MISSED'}"
        else:
            goal = ""
        print(f"{label:<50} {a:>12,.{3 if a < 10 else 1}f} {b:>12,.{3 if b < 10 else 1}f}  {ratio:4.2f}x {goal}  ({unit})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dois", type=int, default=10_000_000)
    parser.add_argument("--base", type=int, default=1_000_000, help="the size compared with, and DOIs per prefix")
    parser.add_argument("--keep", type=Path, help="build (and reuse) the agencies here; default: a temporary folder")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per resolution route")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--database-url", help="postgresql+psycopg://user@host:port/NAME: build and measure the "
                        "agencies as the databases NAME_{dois}_{seed} on that server (default: SQLite files in --keep)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one agency's URL, JSON on stdout
    parser.add_argument("--label", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--run-id", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure_one(Agency(args.measure, args.label), args.keep, args.base, args.count, args.seed,
                                     args.seconds, args.run_id)))
        return 0
    assert args.dois % args.base == 0 and args.dois >= args.base and args.base % 10_000 == 0
    temporary = None
    if args.keep is None:
        temporary = args.keep = Path(tempfile.mkdtemp(prefix="agency-bench-scale-"))
    args.keep = args.keep.resolve()  # the servers run from the repository: a SQLite URL must not be relative
    args.keep.mkdir(parents=True, exist_ok=True)
    try:
        agencies = build(args.keep, args.base, args.dois, args.seed, args.database_url)
        if args.build_only:
            return 0
        results = []
        # the metadata load's submission ids are run_id * 100 + n: above the built ones, within PostgreSQL's integer
        run_id = 10_000 + int(time.time()) % 1_000_000
        samples = pickle.loads((args.keep / f"samples-{args.base}-{args.seed}.pickle").read_bytes())
        usable = still_indexed(list(agencies), samples)
        if len(usable) < len(samples):
            print(f"query lines from {len(usable):,} of the {len(samples):,} sampled records (the others were "
                  "updated by runs before updates spared them)", flush=True)
        (args.keep / f"run-samples-{args.base}-{args.seed}.pickle").write_bytes(pickle.dumps(usable))
        for number, (agency, count) in enumerate(zip(agencies, (args.base, args.dois))):
            answer = subprocess.run(
                [sys.executable, __file__, "--measure", agency.url, "--label", agency.label, "--count", str(count),
                 "--keep", str(args.keep), "--dois",
                 str(args.dois), "--base", str(args.base), "--seed", str(args.seed), "--seconds", str(args.seconds),
                 "--run-id", str(run_id * 10 + number)], stdout=subprocess.PIPE, text=True, check=True)
            results.append(json.loads(answer.stdout.strip().splitlines()[-1]))
            print(f"measured {results[-1]['dois']:,}: {json.dumps(results[-1])}", flush=True)
        print_table(*results)
        print("\nThe machine is shared: compare the ratios (and each rate with its floor in the same run), "
              "not the absolute rates.")
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
            if args.database_url:  # their samples went with the folder
                for agency in {agency_at(temporary, args.database_url, n, args.seed) for n in (args.base, args.dois)}:
                    drop_database(agency)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
