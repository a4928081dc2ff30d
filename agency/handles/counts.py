"""How many handles each prefix holds, read from the rows the triggers of migration 0016 keep.

A prefix's count is the sum of its ``handle_counts`` rows. On PostgreSQL every
statement that adds or removes handles adds a row, so the rows are folded back
into one per prefix: by a reader that finds more than ``FOLD_AT`` of them, and
every five minutes for every prefix by the scheduler
(``agency.runtime.scheduling.COUNT_FOLD_SECONDS``). A count costs a few index
entries, however many handles the prefix holds.
"""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from agency.models import HandleCount

FOLD_AT = 64  # count rows of one prefix a reader sums before it folds them

# One statement takes the rows and puts back their sum: rows that concurrent writers add meanwhile are not
# in its snapshot and stay; rows another fold holds are skipped, not waited for (no fold waits or deadlocks,
# so a reader's fold cannot fail its request). Prefixes whose sum is 0 (every handle deleted) keep no row.
_FOLD = """WITH taken AS (DELETE FROM handle_counts WHERE id IN (
    SELECT id FROM handle_counts WHERE prefix IN (
        SELECT prefix FROM handle_counts {only} GROUP BY prefix HAVING count(*) > 1)
    FOR UPDATE SKIP LOCKED) RETURNING prefix, handles)
INSERT INTO handle_counts (prefix, handles)
SELECT prefix, sum(handles) FROM taken GROUP BY prefix HAVING sum(handles) <> 0"""


def prefix_count(session: Session, prefix: str) -> int:
    """The number of ``prefix``'s handles, as of this transaction's view of the counts."""
    total, rows = session.execute(select(func.coalesce(func.sum(HandleCount.handles), 0), func.count())
                                  .where(HandleCount.prefix == prefix)).one()
    if rows > FOLD_AT:
        fold_counts(session, prefix)
    return int(total)


def prefix_counts(session: Session) -> dict[str, int]:
    """Every prefix that holds handles, with their number."""
    rows = session.execute(select(HandleCount.prefix, func.sum(HandleCount.handles))
                           .group_by(HandleCount.prefix))
    return {prefix: int(total) for prefix, total in rows if total}


def fold_counts(session: Session, prefix: str | None = None) -> int:
    """Fold ``prefix``'s count rows (every prefix's when None) into one; the number of prefixes folded.

    Only PostgreSQL's triggers add a row per statement; SQLite's keep one per prefix already."""
    if session.get_bind().dialect.name != "postgresql":
        return 0
    only = "WHERE prefix = :prefix" if prefix is not None else ""
    result = session.execute(text(_FOLD.format(only=only)), {"prefix": prefix} if prefix is not None else {})
    return result.rowcount
