"""Finding DOIs for piped queries in the metadata database.

Candidates come only from indexed look-ups with exact keys (``agency.metadata.text_keys``):
first page + volume first, then, for lines that found nothing, first author +
year, journal or book title + volume, ISBN, and the titles of books. Each
candidate is then scored (``agency.query.scoring``) against everything the query says:

* numbers are exact: a different first page or volume, or a year more than
  one off, rules a candidate out; the issue only adds or costs a little;
* identifiers are exact: a shared ISSN or ISBN is strong evidence. A valid
  ISSN that is not one of the record's is strong evidence against it, unless
  the query's title is the same journal's title (citations often give the
  other medium's ISSN): with another journal's title it rules the record out
  (sibling journals share words: "... Open Source Software" and "... Open
  Source Education"); with no title at all it is a typo only if no journal
  indexed here has it, and then only exact numbers and first author decide.
  An ISSN with a wrong check digit is a weak hint: an indexed ISSN one
  character away adds a little;
* titles and surnames are fuzzy (rapidfuzz): journal abbreviations are
  recognized word by word ("J Synth Res" = "Journal of Synthetic Results"),
  every title a journal was deposited under (``metadata_journal_titles``) is
  one of its titles, and two titles that each have a word the other lacks
  name two journals. The first author decides: a surname too unlike it rules
  the candidate out, unless a co-author has that very name (which counts
  less, fuzzy co-author matches of short names not at all) or ISSN, volume,
  issue, first page and year all agree exactly (a surname the deposit
  garbled costs points then, no more).

The best candidate wins when it reaches ``Thresholds.accept`` and no other
candidate comes within ``Thresholds.margin`` of it; otherwise the line is
AMBIGUOUS (with the candidates) or NO_MATCH. Ties are broken by DOI, so the
same data always gives the same answer.

Look-ups run for many lines at once: the key tuples of up to
``TERMS_PER_STATEMENT`` lines travel as one parameter, read as a table that is
joined to the index (``agency.db.RowsTable``), which is what makes large files fast.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from functools import lru_cache
from operator import itemgetter
from typing import Callable, Iterable, Sequence

from sqlalchemy import Integer, String, and_, or_, select, true, union_all
from sqlalchemy.orm import Session, aliased

from agency.db import Database, PreparedStatement, RowsTable, driver_cursor
from agency.handles.doi_syntax import doi_key
from agency.handles.store import final_names
from agency.models import Handle
from agency.models.metadata import (
    MetadataContributor, MetadataIdentifier, MetadataJournalTitle, MetadataLocator, MetadataRecord,
)
from agency.query.piped_format import (
    Ambiguous, BookQuery, DoiLookup, Found, JournalQuery, NoMatch, Outcome, QueryLine, RecordFields,
)
from agency.query.scoring import (
    EXACT_AUTHOR, Candidate, Evidence, QueryKeys, Thresholds, best_name_similarity, decide, first_author_similarity,
    numbers_evidence, numbers_exact, score, source_evidence,
)

TERMS_PER_STATEMENT = 200  # key tuples per look-up statement (each statement returns at most MAX_ROWS_PER_LOOKUP)
KEYS_PER_STATEMENT = 500
MAX_ROWS_PER_LOOKUP = 5000


RECORD_COLUMNS = (
    MetadataRecord.doi_key, MetadataRecord.doi, MetadataRecord.content_type, MetadataRecord.body_type,
    MetadataRecord.journal_title_key, MetadataRecord.journal_abbrev_key, MetadataRecord.series_title_key,
    MetadataRecord.volume_title_key, MetadataRecord.volume_key, MetadataRecord.issue_key,
    MetadataRecord.first_page_key, MetadataRecord.year, MetadataRecord.first_author_key,
    MetadataRecord.component_number, MetadataRecord.edition_number,
)

# -- look-ups -----------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Strategy:
    """One indexed look-up: columns compared with equality, and the key tuples a query gives for them.

    ``table`` is where the columns are: ``metadata_records`` itself, or a table that
    leads to it by DOI key. Through ``metadata_locators`` (ISSN, volume, first page)
    a journal query costs one primary-key probe however many journals share a volume
    and page number; through ``metadata_identifiers`` an ISBN finds its book and chapters.
    """

    name: str
    columns: tuple
    keys_of: Callable[[QueryKeys], list[tuple]]
    table: object = MetadataRecord
    rule_outs: tuple["RuleOut", ...] = ()
    # PostgreSQL: the one rule-out's column follows ``columns`` in an index, so each of the rule-out's
    # branches is sought there; else PostgreSQL tests the rule-out on each heap row the columns find
    # (SQLite tests it on the index entry either way).
    seeks_rule_out: bool = False

    def key_rows(self, keys: QueryKeys) -> list[tuple]:
        """The query's key tuples, each followed by the values of the strategy's rule-outs."""
        rows = [key for key in self.keys_of(keys) if None not in key]
        for rule_out in self.rule_outs if rows else ():
            rows = [row + (value,) for row in rows for value in rule_out.values_of(keys)]
        return rows


@dataclass(frozen=True, eq=False)
class RuleOut:
    """A number that rules a candidate out when the query and the record both give it and they differ
    (``scoring.numbers_evidence``), checked in the look-up itself.

    The condition is exactly the scorer's, so no answer changes; what changes is that such
    records stay in the index. A fallback key like surname + year + page finds records in
    proportion to the size of the agency (2,249 rows at 1 M records, 17,851 at 10 M for the
    same 900 lines), nearly all of them of other volumes.
    """

    column: object
    type_: object
    values_of: Callable[[QueryKeys], tuple]
    condition: Callable[[object, object], object]
    # The same condition as conditions that exclude one another, each an equality an index can seek.
    branches: Callable[[object, object], tuple] | None = None


def _volume_rule_out(column, key):
    return or_(key.is_(None), column.is_(None), column == "", column == key)


def _volume_rule_out_branches(column, key):
    """``_volume_rule_out`` in four parts, no row in two: no volume in the line; the line's volume; a record
    volume of '' (unless the line's is ''); no record volume."""
    return (key.is_(None), and_(key.is_not(None), column == key), and_(key.is_not(None), key != "", column == ""),
            and_(key.is_not(None), column.is_(None)))


def _year_rule_out(column, key):
    return or_(key.is_(None), column.is_(None), column == 0, column.between(key - 1, key + 1))


def _years(k: QueryKeys) -> tuple[int, ...]:
    return (k.year - 1, k.year, k.year + 1) if k.year else ()


def _page_volume_keys(k: QueryKeys) -> list[tuple]:
    return [(k.page, v) for v in k.volumes] if k.page and k.volumes else []


def _page_volume_issn_keys(k: QueryKeys) -> list[tuple]:
    return [(k.page, v, issn) for v in k.volumes for issn in sorted(k.issns)] if k.page and k.volumes else []


def _title_volume_page_keys(k: QueryKeys) -> list[tuple]:
    if k.issns or k.is_book or not k.page:
        return []
    return [(t, v, k.page) for t in k.titles for v in k.volumes]


def _page_volume_keys_without_issn_or_title(k: QueryKeys) -> list[tuple]:
    return [] if k.issns or (k.titles and not k.is_book) else _page_volume_keys(k)


def _author_year_page_keys(k: QueryKeys) -> list[tuple]:
    return [(k.authors[0], y, k.page) for y in _years(k)] if k.authors and k.page else []


def _author_page_keys(k: QueryKeys) -> list[tuple]:
    return [(k.authors[0], k.page)] if k.authors and k.page and not k.year else []


def _author_year_keys(k: QueryKeys) -> list[tuple]:
    return [(k.authors[0], y) for y in _years(k)] if k.authors and not k.page else []


def _author_keys(k: QueryKeys) -> list[tuple]:
    return [(k.authors[0],)] if k.authors and not k.year and not k.page else []


def _title_volume_keys(k: QueryKeys) -> list[tuple]:
    return [(t, v) for t in k.titles for v in k.volumes] if not k.is_book and not k.page else []


def _volume_title_keys(k: QueryKeys) -> list[tuple]:
    return [(k.volume_title,)] if k.volume_title else []


def _series_title_keys(k: QueryKeys) -> list[tuple]:
    return [(k.series_title,)] if k.series_title and not k.volume_title else []


def _page_year_keys(k: QueryKeys) -> list[tuple]:
    return [(k.page, y) for y in _years(k)] if k.page and not k.volumes and not k.authors else []


def _isbn_keys(k: QueryKeys) -> list[tuple]:
    return [("isbn", isbn) for isbn in sorted(k.isbns)]


def _implied_issn_volume_page_keys(k: QueryKeys) -> list[tuple]:
    """By a title the record does not carry itself, through the ISSNs of journals deposited under it."""
    if not k.page or not k.implied_issns:
        return []
    return [(k.page, v, issn) for v in k.volumes for issn in sorted(k.implied_issns)]


R = MetadataRecord
L = MetadataLocator
SAME_VOLUME = RuleOut(R.volume_key, String(), lambda k: k.volumes or (None,), _volume_rule_out,
                      _volume_rule_out_branches)
NEAR_YEAR = RuleOut(R.year, Integer(), lambda k: (k.year or None,), _year_rule_out)
ISBN = aliased(MetadataIdentifier, name="by_isbn")  # the identifiers table also joins each candidate's own
FIRST_STRATEGIES = (
    Strategy("issn+volume+page", (L.first_page_key, L.volume_key, L.issn), _page_volume_issn_keys, L),
    Strategy("title+volume+page", (R.journal_title_key, R.volume_key, R.first_page_key), _title_volume_page_keys),
    Strategy("abbrev+volume+page", (R.journal_abbrev_key, R.volume_key, R.first_page_key),
             _title_volume_page_keys),
    Strategy("page+volume", (R.first_page_key, R.volume_key), _page_volume_keys_without_issn_or_title,
             rule_outs=(NEAR_YEAR,)),
    Strategy("isbn", (ISBN.kind, ISBN.value), _isbn_keys, ISBN),
)
FALLBACK_STRATEGIES = (
    Strategy("page+volume", (R.first_page_key, R.volume_key), _page_volume_keys,  # e.g. the other medium's ISSN
             rule_outs=(NEAR_YEAR,)),
    Strategy("title variant+volume+page", (L.first_page_key, L.volume_key, L.issn), _implied_issn_volume_page_keys,
             L),
    Strategy("author+year+page", (R.first_author_key, R.year, R.first_page_key), _author_year_page_keys,
             rule_outs=(SAME_VOLUME,), seeks_rule_out=True),  # ix_mdrec_author_year_page_vol
    Strategy("author+page", (R.first_author_key, R.first_page_key), _author_page_keys, rule_outs=(SAME_VOLUME,)),
    Strategy("author+year", (R.first_author_key, R.year), _author_year_keys, rule_outs=(SAME_VOLUME,)),
    Strategy("author", (R.first_author_key,), _author_keys, rule_outs=(SAME_VOLUME,)),
    Strategy("title+volume", (R.journal_title_key, R.volume_key), _title_volume_keys, rule_outs=(NEAR_YEAR,)),
    Strategy("abbrev+volume", (R.journal_abbrev_key, R.volume_key), _title_volume_keys, rule_outs=(NEAR_YEAR,)),
    Strategy("volume title", (R.volume_title_key,), _volume_title_keys, rule_outs=(SAME_VOLUME, NEAR_YEAR)),
    Strategy("series title", (R.series_title_key,), _series_title_keys, rule_outs=(SAME_VOLUME, NEAR_YEAR)),
    Strategy("page+year", (R.first_page_key, R.year), _page_year_keys),
)


def _chunks(items: Sequence, size: int) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


@lru_cache(maxsize=64)
def _lookup(strategy: Strategy, dialect) -> tuple[RowsTable, PreparedStatement]:
    """The strategy's look-up: the key tuples as a table, joined on the strategy's columns.

    One statement however many keys, compiled once; each row carries the position
    of the key tuple that found it. (An OR of hundreds of terms cost more to build,
    compile and plan than the index probes it asked for.)
    """
    types = [column.type for column in strategy.columns] + [rule_out.type_ for rule_out in strategy.rule_outs]
    keys = RowsTable.of(dialect.name, types, "keys")
    width = len(strategy.columns)
    matched = [column == key for column, key in zip(strategy.columns, keys.columns)]
    ruled = [rule_out.condition(rule_out.column, key)
             for rule_out, key in zip(strategy.rule_outs, keys.columns[width:])]
    if strategy.seeks_rule_out and strategy.rule_outs and dialect.name == "postgresql":
        statement = _sought_rule_out(strategy, keys, matched)
    else:
        statement = select(*RECORD_COLUMNS, MetadataIdentifier.kind, MetadataIdentifier.value, keys.ordinal)
        if strategy.table is MetadataRecord:
            statement = statement.select_from(keys.source).join(MetadataRecord, and_(*matched, *ruled))
        else:
            statement = (statement.select_from(keys.source).join(strategy.table, and_(*matched))
                         .join(MetadataRecord, and_(MetadataRecord.doi_key == strategy.table.doi_key, *ruled)))
        statement = statement.outerjoin(MetadataIdentifier, MetadataIdentifier.doi_key == MetadataRecord.doi_key)
    statement = statement.limit(MAX_ROWS_PER_LOOKUP)
    prepared = PreparedStatement.of(statement, dialect)
    if dialect.name == "sqlite":
        # The keys must be the outer loop, each probing the index. SQLite's planner may
        # scan the table instead when the column is mostly NULL (volume titles in a
        # database of journal articles); CROSS JOIN is SQLite's way to fix the order.
        head, joined, tail = prepared.sql.partition(" JOIN ")
        if not joined or "FROM json_each(" not in head:
            raise RuntimeError(f"unexpected shape of the {strategy.name} look-up: {prepared.sql}")
        prepared = replace(prepared, sql=f"{head} CROSS JOIN {tail}")
    return keys, prepared


def _sought_rule_out(strategy: Strategy, keys: RowsTable, matched: list):
    """The look-up as one index probe per key tuple and branch of the rule-out (a LATERAL union).

    PostgreSQL tests a condition that is not an index condition on the heap row: at 10,000,000
    records a surname + year + page fallback fetched ~21 rows per key that the volume then
    removed (random heap pages), against ~4 at 1,000,000. As equalities on the index's next
    column the volume is decided in the index, and only rows that pass are fetched."""
    [rule_out] = strategy.rule_outs
    key = keys.columns[len(strategy.columns)]
    candidates = union_all(*(select(*RECORD_COLUMNS).where(*matched, branch)
                             for branch in rule_out.branches(rule_out.column, key))).lateral("candidates")
    return (select(*(candidates.c[column.name] for column in RECORD_COLUMNS), MetadataIdentifier.kind,
                   MetadataIdentifier.value, keys.ordinal)
            .select_from(keys.source).join(candidates, true())
            .outerjoin(MetadataIdentifier, MetadataIdentifier.doi_key == candidates.c.doi_key))


def _lookup_rows(connection, strategy: Strategy, keys: Sequence[tuple]) -> list[tuple]:
    """The rows of one look-up for up to ``TERMS_PER_STATEMENT`` key tuples, as plain tuples.

    Run on the DB-API cursor of the session's connection: SQLAlchemy's row objects
    cost more than SQLite's index probes here.
    """
    table, prepared = _lookup(strategy, connection.dialect)
    with driver_cursor(connection, prepared.sql) as cursor:
        cursor.execute(prepared.sql, prepared.parameters(table.parameters(keys)))
        return cursor.fetchall()


def _lookup_pieces(connection, strategy: Strategy, chunk: Sequence[tuple]) -> Iterable[tuple[Sequence, list | None]]:
    """``(key rows, rows)`` pieces that together cover ``chunk``.

    A look-up that reaches ``MAX_ROWS_PER_LOOKUP`` may have lost rows, so it is split in
    halves until each piece fits; a single key that still does not fit comes back with
    None: its lines cannot be told apart from what it finds, and they are never answered
    from a partial list (that could name the wrong DOI). At most about
    ``log2(TERMS_PER_STATEMENT)`` extra look-ups per such key, each bounded by the limit.
    """
    rows = _lookup_rows(connection, strategy, chunk)
    if len(rows) < MAX_ROWS_PER_LOOKUP:
        yield chunk, rows
    elif len(chunk) == 1:
        yield chunk, None
    else:
        half = len(chunk) // 2
        yield from _lookup_pieces(connection, strategy, chunk[:half])
        yield from _lookup_pieces(connection, strategy, chunk[half:])


def _through_aliases(session: Session, outcomes: list[Outcome | None]) -> None:
    """A match that is an alias is answered with the DOI the alias leads to (the primary).

    An ambiguous answer's candidates are mapped too: candidates that lead to one primary are one
    work registered twice, so when only one is left the line is answered with it."""
    names = [o.doi for o in outcomes if isinstance(o, Found)]
    names += [c for o in outcomes if isinstance(o, Ambiguous) for c in o.candidates]
    finals = final_names(session, names) if names else {}
    if finals:
        outcomes[:] = [_mapped(o, finals) for o in outcomes]


def _mapped(outcome: Outcome | None, finals: dict[str, str]) -> Outcome | None:
    if isinstance(outcome, Found):
        return Found(finals.get(outcome.doi, outcome.doi))
    if isinstance(outcome, Ambiguous):
        distinct = tuple(dict.fromkeys(finals.get(c, c) for c in outcome.candidates))
        return Found(distinct[0]) if len(distinct) == 1 else Ambiguous(distinct)
    return outcome


class QueryMatcher:
    """Answers parsed query lines from the metadata database; one instance serves many calls."""

    def __init__(self, db: Database, thresholds: Thresholds | None = None) -> None:
        self.db = db
        self.thresholds = thresholds or Thresholds()

    def answer(self, lines: Sequence[QueryLine]) -> list[Outcome | None]:
        """One outcome per line (None for blank and malformed lines), in order."""
        outcomes: list[Outcome | None] = [None] * len(lines)
        metadata = {i: QueryKeys.of(line.query) for i, line in enumerate(lines)
                    if isinstance(line.query, (JournalQuery, BookQuery))}
        lookups = {i: line.query for i, line in enumerate(lines) if isinstance(line.query, DoiLookup)}
        with self.db.sessions() as session:
            if metadata:
                for i, outcome in self._match(session, metadata).items():
                    outcomes[i] = outcome
            if lookups:
                for i, outcome in self._describe(session, lookups).items():
                    outcomes[i] = outcome
            _through_aliases(session, outcomes)
        return outcomes

    # -- metadata queries ---------------------------------------------------------
    def _match(self, session: Session, queries: dict[int, QueryKeys]) -> dict[int, Outcome]:
        candidates: dict[int, dict[str, Candidate]] = {i: {} for i in queries}
        records: dict[str, Candidate] = {}
        broad: dict[int, str] = {}
        self._gather(session, queries, FIRST_STRATEGIES, candidates, records, broad)
        outcomes = self._score_all(session, queries, candidates, records)
        # A miss is looked at again more widely, unless page and volume were already searched
        # without an ISSN filter (an ISSN of the other medium, or a wrong one, narrows too much).
        retry = {i: queries[i] for i, outcome in outcomes.items()
                 if isinstance(outcome, NoMatch) and (not candidates[i] or not queries[i].page
                                                      or not queries[i].volumes or queries[i].issns
                                                      or (queries[i].titles and not queries[i].is_book))}
        if retry:
            retry = _with_implied_issns(session, retry)
            self._gather(session, retry, FALLBACK_STRATEGIES, candidates, records, broad)
            outcomes.update(self._score_all(session, retry, candidates, records))
        for i, strategy_name in broad.items():
            if isinstance(outcomes[i], Found):
                outcomes[i] = NoMatch(f"too many registered records share this line's {strategy_name} to choose "
                                      "among them; give the ISSN or title, volume and first page")
        return outcomes

    def _score_all(self, session: Session, queries: dict[int, QueryKeys], candidates: dict[int, dict[str, Candidate]],
                   records: dict[str, Candidate]) -> dict[int, Outcome]:
        _load_title_variants(session, queries, candidates)
        self._complete(session, queries, candidates, records)
        evidence = Evidence(_known_issns(session, queries, candidates))
        outcomes = {}
        for i, keys in queries.items():
            scored = []
            for candidate in candidates[i].values():
                points = score(keys, candidate, self.thresholds, evidence)
                if points is not None:
                    scored.append((points, candidate))
            outcomes[i] = decide(scored, self.thresholds)
        return outcomes

    def _gather(self, session: Session, queries: dict[int, QueryKeys], strategies: Sequence[Strategy],
                candidates: dict[int, dict[str, Candidate]], records: dict[str, Candidate],
                broad: dict[int, str]) -> None:
        """Candidates for each line by each strategy; ``broad`` gets the lines (and the strategy) with a key
        that alone finds more rows than one look-up returns, whose candidates are therefore incomplete."""
        width = len(RECORD_COLUMNS)
        for strategy in strategies:
            wanted: dict[tuple, list[int]] = defaultdict(list)  # key tuple -> the lines asking
            for i, keys in queries.items():
                for key in strategy.key_rows(keys):
                    wanted[key].append(i)
            connection = session.connection() if wanted else None
            # In index order of the compared columns (the rule-outs' values may be None, which
            # compares with nothing; rows equal up to them keep the lines' order).
            for chunk in _chunks(sorted(wanted, key=itemgetter(slice(0, len(strategy.columns)))),
                                 TERMS_PER_STATEMENT):
                for piece, rows in _lookup_pieces(connection, strategy, chunk):
                    if rows is None:
                        for i in wanted[piece[0]]:
                            broad.setdefault(i, strategy.name)
                        continue
                    for row in rows:
                        kind = row[width]
                        candidate = records.get(row[0])
                        if candidate is None:
                            candidate = records[row[0]] = Candidate(*row[:width])
                        if kind == "issn":
                            candidate.issns.add(row[width + 1])
                        elif kind == "isbn":
                            candidate.isbns.add(row[width + 1])
                        for i in wanted[piece[row[width + 2]]]:
                            candidates[i][candidate.doi_key] = candidate

    def _complete(self, session: Session, queries: dict[int, QueryKeys],
                  candidates: dict[int, dict[str, Candidate]], records: dict[str, Candidate]) -> None:
        """Load contributor surnames where the first author is not enough (candidates come with their identifiers)."""
        need_names = set()
        for i, keys in queries.items():
            if not keys.authors:
                continue
            for c in candidates[i].values():
                if c.names_loaded or c.doi_key in need_names:
                    continue
                if not (keys.is_book or not c.first_author_key or best_name_similarity(
                        keys.authors, (c.first_author_key,)) < self.thresholds.author_floor):
                    continue  # the first author decides
                if numbers_evidence(keys, c) is not None and source_evidence(keys, c, self.thresholds) is not None:
                    need_names.add(c.doi_key)  # not ruled out otherwise: the other authors may matter
        for chunk in _chunks(sorted(need_names), KEYS_PER_STATEMENT):
            for key, surname_key in session.execute(
                    select(MetadataContributor.doi_key, MetadataContributor.surname_key)
                    .where(MetadataContributor.doi_key.in_(list(chunk)))
                    .order_by(MetadataContributor.doi_key, MetadataContributor.position)):
                if surname_key:
                    records[key].names.append(surname_key)
        for key in need_names:
            records[key].names_loaded = True

    # -- DOI look-ups ---------------------------------------------------------------
    def _describe(self, session: Session, lookups: dict[int, DoiLookup]) -> dict[int, Outcome]:
        keys = {i: doi_key(q.doi) for i, q in lookups.items()}
        found: dict[str, RecordFields] = {}
        for chunk in _chunks(sorted(set(keys.values())), KEYS_PER_STATEMENT):
            found.update(describe_records(session, list(chunk)))
        missing = sorted(set(keys.values()) - set(found))
        registered: set[str] = set()
        for chunk in _chunks(missing, KEYS_PER_STATEMENT):
            registered.update(session.scalars(select(Handle.key).where(Handle.key.in_(list(chunk)))))
        outcomes: dict[int, Outcome] = {}
        for i, key in keys.items():
            doi = lookups[i].doi
            if key in found:
                outcomes[i] = found[key]
            elif key in registered:
                outcomes[i] = NoMatch(f"{doi} is registered but its metadata is not indexed yet; "
                                      "ask again after the next metadata load")
            else:
                outcomes[i] = NoMatch(f"{doi} is not registered here")
        return outcomes


def _load_title_variants(session: Session, queries: dict[int, QueryKeys],
                         candidates: dict[int, dict[str, Candidate]]) -> None:
    """Give each candidate the titles its journal was deposited under, where the query's title is not its own."""
    wanted: dict[str, Candidate] = {}
    for i, keys in queries.items():
        if not keys.titles or keys.is_book:
            continue
        for c in candidates[i].values():
            if c.issns and not c.title_variants and c.doi_key not in wanted and not any(
                    q == r for q in keys.titles for r in c.own_title_keys):
                wanted[c.doi_key] = c
    if not wanted:
        return
    variants: dict[str, set[str]] = defaultdict(set)
    issns = sorted({issn for c in wanted.values() for issn in c.issns})
    for chunk in _chunks(issns, KEYS_PER_STATEMENT):
        for issn, title in session.execute(select(MetadataJournalTitle.issn, MetadataJournalTitle.title_key)
                                           .where(MetadataJournalTitle.issn.in_(list(chunk)))):
            variants[issn].add(title)
    for c in wanted.values():
        own = set(c.own_title_keys)
        c.title_variants = tuple(sorted({t for issn in c.issns for t in variants.get(issn, ())} - own))


def _known_issns(session: Session, queries: dict[int, QueryKeys],
                 candidates: dict[int, dict[str, Candidate]]) -> frozenset[str]:
    """Which of the ISSNs that lines give alone are journals indexed here: asked only where it decides,
    for a candidate with another ISSN that the exact-numbers rule for ISSN typos would otherwise accept."""
    asked = {issn for i, keys in queries.items() if keys.issns and not keys.titles and not keys.is_book
             and any(c.issns and keys.issns.isdisjoint(c.issns) and numbers_exact(keys, c)
                     and first_author_similarity(keys, c) >= EXACT_AUTHOR for c in candidates[i].values())
             for issn in keys.issns}
    known: set[str] = set()
    for chunk in _chunks(sorted(asked), KEYS_PER_STATEMENT):
        known.update(session.scalars(select(MetadataJournalTitle.issn).distinct()
                                     .where(MetadataJournalTitle.issn.in_(list(chunk)))))
    return frozenset(known)


def _with_implied_issns(session: Session, queries: dict[int, QueryKeys]) -> dict[int, QueryKeys]:
    """Journal lines with a title and no ISSN, given the ISSNs of the journals deposited under that title."""
    titles = sorted({t for keys in queries.values() if keys.titles and not keys.issns and not keys.is_book
                     for t in keys.titles})
    if not titles:
        return queries
    issns_of: dict[str, set[str]] = defaultdict(set)
    for chunk in _chunks(titles, KEYS_PER_STATEMENT):
        for issn, title in session.execute(select(MetadataJournalTitle.issn, MetadataJournalTitle.title_key)
                                           .where(MetadataJournalTitle.title_key.in_(list(chunk)))):
            issns_of[title].add(issn)
    implied = {}
    for i, keys in queries.items():
        found = frozenset(issn for t in keys.titles for issn in issns_of.get(t, ())) if not keys.issns else None
        implied[i] = replace(keys, implied_issns=found) if found else keys
    return implied


def describe_records(session: Session, keys: list[str]) -> dict[str, RecordFields]:
    """Records in the piped layout's terms, by DOI key."""
    identifiers: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key, kind, value in session.execute(
            select(MetadataIdentifier.doi_key, MetadataIdentifier.kind, MetadataIdentifier.value)
            .where(MetadataIdentifier.doi_key.in_(keys))
            .order_by(MetadataIdentifier.doi_key, MetadataIdentifier.kind, MetadataIdentifier.value)):
        identifiers[key].append((kind, value))
    described = {}
    for r in session.scalars(select(MetadataRecord).where(MetadataRecord.doi_key.in_(keys))):
        issns = tuple(v for k, v in identifiers[r.doi_key] if k == "issn")
        isbns = tuple(v for k, v in identifiers[r.doi_key] if k == "isbn")
        is_journal = r.body_type == "journal"
        described[r.doi_key] = RecordFields(
            doi=r.doi, is_journal=is_journal, issns=issns, isbns=isbns,
            title=(r.journal_title or r.journal_abbrev or "") if is_journal else (r.series_title or ""),
            volume_title=r.volume_title or "", author=r.first_author_surname or "", volume=r.volume or "",
            issue=r.issue or "", edition=r.edition_number or "", page=r.first_page or "", year=r.year,
            component=r.component_number or "")
    return described

