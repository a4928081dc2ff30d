"""How many records the metadata database holds.

On PostgreSQL, the sum of the ``metadata_counts`` rows that the triggers of migration
0018 add, one per statement that adds or removes records; the rows are folded back
into one by a reader that finds more than ``FOLD_AT`` of them, and every five minutes
by the scheduler with the handle counts (``agency.runtime.scheduling.COUNT_FOLD_JOB``).
A count costs a few rows however many records there are (a count of the records took
1.1-1.7 s at 10,000,000). On SQLite, ``count(*)``: it reads only the page headers of
one index (57-158 ms at 10,000,000), where a row trigger would have cost each loaded
record a statement journal (see the migration).
"""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from agency.handles.counts import FOLD_AT  # rows a reader sums before it folds them, as for handle counts
from agency.models import MetadataCount, MetadataRecord

# One statement takes the rows and puts back their sum: rows that a load adds meanwhile are not in its snapshot
# and stay; rows another fold holds are skipped, not waited for, so a reader's fold never waits or deadlocks.
_FOLD = """WITH taken AS (DELETE FROM metadata_counts WHERE id IN (
    SELECT id FROM metadata_counts WHERE (SELECT count(*) FROM metadata_counts) > 1
    FOR UPDATE SKIP LOCKED) RETURNING records)
INSERT INTO metadata_counts (records) SELECT sum(records) FROM taken HAVING count(*) > 0"""


def indexed_records(session: Session) -> int:
    """The number of records in the metadata database, as of this transaction's view."""
    if session.get_bind().dialect.name != "postgresql":
        return session.scalar(select(func.count()).select_from(MetadataRecord))
    total, rows = session.execute(select(func.coalesce(func.sum(MetadataCount.records), 0), func.count())).one()
    if rows > FOLD_AT:
        fold_record_counts(session)
    return int(total)


def fold_record_counts(session: Session) -> bool:
    """Fold the count rows into one; whether there was anything to fold. Only PostgreSQL keeps them."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    return session.execute(text(_FOLD)).rowcount > 0
