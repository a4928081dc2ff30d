"""The number of indexed metadata records: on PostgreSQL kept by the triggers of migration 0018, on SQLite
counted. Equal to a count of the records after loads, reloads (newer deposits replace records: no double count)
and deletions, folded on PostgreSQL, and what the staff console and `agency mddb status` show."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from agency.datacite.index import unindex
from agency.handles.doi_syntax import doi_key
from agency.metadata.extraction import RecordMetadata
from agency.metadata.index import LoadSource, MetadataWriter, prepare
from agency.metadata.record_count import FOLD_AT, fold_record_counts, indexed_records
from agency.models import MetadataCount, MetadataRecord


def articles(numbers, timestamp: str = "20240101000000") -> list[RecordMetadata]:
    return [RecordMetadata(seq=n + 1, doi=f"10.5555/rc.{n}", url=f"https://example.org/{n}", timestamp=timestamp,
                           content_type="journal_article", body_type="journal", title=f"Article {n}",
                           journal_title="Annals of Counting", volume="1", first_page=str(n), year=2024)
            for n in numbers]


def index(svc, records: list[RecordMetadata]) -> None:
    source = LoadSource("test/2024/01/1", "alice", None, None)
    with svc.db.transaction() as session:
        MetadataWriter().write(session, [prepare(r, source) for r in records])


def counted(session) -> int:
    """What the records themselves say."""
    return session.scalar(select(func.count()).select_from(MetadataRecord))


def count_rows(session) -> int:
    return session.scalar(select(func.count()).select_from(MetadataCount))


def test_the_count_follows_loads_reloads_and_deletions(svc):
    index(svc, articles(range(7)))
    index(svc, [replace(r, title="Newer") for r in articles(range(3, 9), timestamp="20250101000000")])
    with svc.db.transaction() as session:
        assert indexed_records(session) == counted(session) == 9  # 3..6 replaced, not added again
        unindex(session, "10.5555/rc.0")  # a DataCite DOI made hidden leaves the index
        session.execute(delete(MetadataRecord).where(
            MetadataRecord.doi_key.in_([doi_key("10.5555/rc.1"), doi_key("10.5555/rc.2")])))
    with svc.db.sessions() as session:
        assert indexed_records(session) == counted(session) == 6
    assert svc.mddb.status().records == 6


def test_a_reader_folds_many_rows_and_the_scheduler_folds_the_rest(svc):
    for n in range(FOLD_AT + 2):  # a statement each: a row each on PostgreSQL
        index(svc, articles([n]))
    with svc.db.transaction() as session:
        rows = count_rows(session)
        assert indexed_records(session) == FOLD_AT + 2
    with svc.db.sessions() as session:
        if svc.db.dialect == "postgresql":
            assert rows > FOLD_AT and count_rows(session) == 1  # the reader folded them
        else:
            assert rows == count_rows(session) == 0  # SQLite counts the records; no trigger writes here
    index(svc, articles([1000]))
    index(svc, articles([1001]))
    svc.fold_counts()
    with svc.db.sessions() as session:
        assert count_rows(session) == (1 if svc.db.dialect == "postgresql" else 0)
        assert indexed_records(session) == counted(session) == FOLD_AT + 4


@pytest.fixture
def postgresql(svc):
    if svc.db.dialect != "postgresql":
        pytest.skip("PostgreSQL's statement-level count rows and their folding")
    return svc


def test_a_fold_beside_an_open_load_neither_waits_nor_loses_its_records(postgresql):
    index(postgresql, articles(range(3)))
    index(postgresql, articles(range(3, 5)))
    source = LoadSource("test/2024/01/2", "alice", None, None)
    engine = postgresql.db.engine
    with engine.connect() as loading, engine.connect() as folding:
        MetadataWriter().write(Session(bind=loading), [prepare(r, source) for r in articles(range(5, 9))])  # open
        folding.execute(text("SET lock_timeout = '2s'"))  # a wait would fail the test instead of hanging it
        assert fold_record_counts(Session(bind=folding))
        folding.commit()
        loading.commit()
    with postgresql.db.sessions() as session:
        assert indexed_records(session) == counted(session) == 9
        assert count_rows(session) == 2  # the fold's row, and the open load's
