"""Finding DOIs for piped queries in the metadata database.

Candidates come only from indexed look-ups with exact keys (``agency.metadata.text_keys``):
first page + volume first, then, for lines that found nothing, first author +
year, journal or book title + volume, ISBN, and the titles of books. Each
candidate is then scored against everything the query says:

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
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Callable, Iterable, Sequence

from rapidfuzz import fuzz
from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased

from agency.db import Database, PreparedStatement, RowsTable, driver_cursor
from agency.handles.doi_syntax import doi_key
from agency.models import Handle
from agency.models.metadata import (
    MetadataContributor, MetadataIdentifier, MetadataJournalTitle, MetadataLocator, MetadataRecord,
)
from agency.query.piped_format import (
    Ambiguous, BookQuery, DoiLookup, Found, JournalQuery, NoMatch, Outcome, QueryLine, RecordFields,
)
from agency.query.keys import first_page_key, volume_keys
from agency.metadata.text_keys import name_key, text_key, title_key, volume_key

TERMS_PER_STATEMENT = 200  # key tuples per look-up statement (each statement returns at most MAX_ROWS_PER_LOOKUP)
KEYS_PER_STATEMENT = 500
MAX_ROWS_PER_LOOKUP = 5000

JOURNAL_TYPES = frozenset({"journal_article", "conference_paper"})
BOOK_ITEM_TYPES = frozenset({"content_item", "conference_paper"})
BOOK_LEVEL_TYPES = frozenset({"book_metadata", "book_series_metadata", "book_set_metadata",
                              "proceedings_metadata", "proceedings_series_metadata"})
TITLE_STOPWORDS = frozenset({"of", "the", "and", "for", "in", "on", "a", "an", "de", "la", "le", "les", "des",
                             "du", "der", "die", "das", "und", "fur", "et", "y", "del", "di"})
_TRANSLITERATION = (("ae", "a"), ("oe", "o"), ("ue", "u"), ("ss", "s"))


@dataclass(frozen=True)
class Thresholds:
    """How sure the matcher must be; points are added per agreeing field (see ``score_journal``)."""

    accept: float = 6.0  # e.g. page + volume + journal, or page + volume + author
    margin: float = 1.5  # a runner-up this close makes the line ambiguous
    author_floor: float = 0.72  # surname similarity below this rules a candidate out
    coauthor_exact: float = 0.92  # a co-author's surname this close counts as named (transliterated, say)
    coauthor_long: int = 6  # ... and a fuzzier one only when both names have at least this many letters
    title_floor: float = 0.6  # title similarity below this counts against a candidate ...
    title_reject: float = 0.45  # ... and below this rules it out (another journal or book)
    garbled_author: float = -2.0  # points for an unlike surname when every number and the ISSN agree exactly
    unknown_issn: float = -2.0  # points for an ISSN no journal here has, when numbers and author agree exactly
    near_issn: float = 1.5  # points for an indexed ISSN one character from a query ISSN whose check digit is wrong


RECORD_COLUMNS = (
    MetadataRecord.doi_key, MetadataRecord.doi, MetadataRecord.content_type, MetadataRecord.body_type,
    MetadataRecord.journal_title_key, MetadataRecord.journal_abbrev_key, MetadataRecord.series_title_key,
    MetadataRecord.volume_title_key, MetadataRecord.volume_key, MetadataRecord.issue_key,
    MetadataRecord.first_page_key, MetadataRecord.year, MetadataRecord.first_author_key,
    MetadataRecord.component_number, MetadataRecord.edition_number,
)


@dataclass(slots=True)
class Candidate:
    """A record as the scorer sees it: its keys, identifiers and contributor surnames."""

    doi_key: str
    doi: str
    content_type: str
    body_type: str
    journal_title_key: str | None
    journal_abbrev_key: str | None
    series_title_key: str | None
    volume_title_key: str | None
    volume_key: str | None
    issue_key: str | None
    first_page_key: str | None
    year: int | None
    first_author_key: str | None
    component_number: str | None
    edition_number: str | None
    issns: set[str] = field(default_factory=set)
    isbns: set[str] = field(default_factory=set)
    names: list[str] = field(default_factory=list)  # contributor surname keys, in order
    names_loaded: bool = False  # contributor surnames loaded (only when the first author's is not enough)
    title_variants: tuple[str, ...] = ()  # other titles its journal was deposited under (by ISSN)

    @property
    def own_title_keys(self) -> tuple[str, ...]:
        """The titles the record's own deposit gives for where it appeared."""
        keys = (self.journal_title_key, self.journal_abbrev_key, self.volume_title_key, self.series_title_key)
        return tuple(k for k in keys if k)

    @property
    def container_title_keys(self) -> tuple[str, ...]:
        """Titles a citation may give for where the record appeared: its own, and its journal's other ones."""
        return self.own_title_keys + self.title_variants


# -- similarity ---------------------------------------------------------------------

def _content_words(key: str) -> list[str]:
    return [w for w in key.split() if w not in TITLE_STOPWORDS]


def _abbreviates(short: str, word: str) -> bool:
    """"Synth" abbreviates "synthetic" (truncation); "Natl" abbreviates "national" (contraction)."""
    if word.startswith(short):
        return True
    if len(short) < 3 or short[0] != word[0] or short[-1] != word[-1]:
        return False
    rest = iter(word)
    return all(ch in rest for ch in short)


def abbreviation_score(short: str, full: str) -> float:
    """1.0 when every word of ``short`` abbreviates the next content word of ``full``, all used.

    Initialisms count too ("USA" = "United States of America"). Unused full
    words lower the score; a word that abbreviates nothing gives 0.
    """
    s_words, f_words = _content_words(short), _content_words(full)
    if not s_words or not f_words or len(s_words) > len(f_words):
        return 0.0
    i = 0
    for word in s_words:
        if i < len(f_words) and _abbreviates(word, f_words[i]):
            i += 1
            continue
        span = f_words[i:i + len(word)]
        if len(word) >= 2 and len(span) == len(word) and all(w[0] == c for w, c in zip(span, word)):
            i += len(word)
            continue
        return 0.0
    return i / len(f_words)


def _word_counterpart(word: str, others: Sequence[str]) -> bool:
    """``word`` is in ``others``, abbreviates or is abbreviated by one, or is one mistyped."""
    for other in others:
        if word == other or _abbreviates(word, other) or _abbreviates(other, word):
            return True
        if (min(len(word), len(other)) >= 5 and abs(len(word) - len(other)) <= 1 and word[0] == other[0]
                and fuzz.ratio(word, other) >= 80):  # a typo, not another word ("geochemistry", "chemistry")
            return True
    return False


@lru_cache(maxsize=65536)
def names_other_journal(query_key: str, record_key: str) -> bool:
    """Each title has a content word the other lacks: "... Open Source Software" vs "... Open Source Education".

    A title that only leaves words out ("Synthetic Chemistry" for "Journal of
    Synthetic Chemistry") or abbreviates them does not name another journal.
    """
    q_words, r_words = _content_words(query_key), _content_words(record_key)
    if not q_words or not r_words:
        return False
    return (not all(_word_counterpart(w, r_words) for w in q_words)
            and not all(_word_counterpart(w, q_words) for w in r_words))


@lru_cache(maxsize=65536)
def same_journal_title(query_key: str, record_key: str) -> bool:
    """The two titles are one journal's: equal, one abbreviating the other, or word for word alike."""
    if query_key == record_key or fuzz.ratio(query_key, record_key) >= 95:
        return True
    if abbreviation_score(query_key, record_key) == 1.0 or abbreviation_score(record_key, query_key) == 1.0:
        return True
    q_words, r_words = _content_words(query_key), _content_words(record_key)
    return (len(q_words) == len(r_words) > 0
            and all(_word_counterpart(q, [r]) for q, r in zip(q_words, r_words)))


@lru_cache(maxsize=65536)
def title_similarity(query_key: str, record_key: str) -> float:
    """Full titles compared as text, abbreviations word by word, whichever fits better; 0 for another journal's."""
    if query_key == record_key:
        return 1.0
    if names_other_journal(query_key, record_key):
        return 0.0
    text_score = fuzz.ratio(query_key, record_key) / 100.0
    return max(text_score, abbreviation_score(query_key, record_key), abbreviation_score(record_key, query_key))


def _transliterated(key: str) -> str:
    for digraph, single in _TRANSLITERATION:
        key = key.replace(digraph, single)
    return key


SHORT_NAME = 3  # surnames this short (or both one longer) are not compared fuzzily: Li / Liu, Wang / Wong


@lru_cache(maxsize=65536)
def name_similarity(query_key: str, record_key: str) -> float:
    """Surnames: exact, misspelled ("Kowalsky") or transliterated ("Mueller" for "Müller").

    A short surname one letter from another is another person's, not a typo
    (Li / Liu, Wang / Wong; but Coen is Cohen misspelled), and so is one that
    starts with another letter (Chang / Zhang): they score below any floor
    unless transliteration makes them equal.
    """
    if query_key == record_key:
        return 1.0
    folded_query, folded_record = _transliterated(query_key), _transliterated(record_key)
    if folded_query == folded_record:
        return 0.95
    plain = fuzz.ratio(query_key, record_key) / 100.0
    folded = fuzz.ratio(folded_query, folded_record) / 100.0
    shorter, longer = sorted((len(query_key), len(record_key)))
    if shorter <= SHORT_NAME or longer <= SHORT_NAME + 1 or query_key[0] != record_key[0]:
        return min(max(plain, folded), 0.5)
    return max(plain, folded)


@lru_cache(maxsize=65536)
def author_variants(author: str) -> tuple[str, ...]:
    """The surname keys a free-text author field may mean: "Smith J" → smithj, smith, j."""
    whole = name_key(author)
    if whole is None:
        return ()
    words = (text_key(author) or "").split()
    longest = sorted((w for w in words if len(w) > 1), key=len, reverse=True)
    return tuple(dict.fromkeys([whole, *longest]))


def best_name_similarity(variants: Sequence[str], names: Iterable[str]) -> float:
    best = 0.0
    for name in names:
        for variant in variants:
            best = max(best, name_similarity(variant, name))
            if best == 1.0:
                return best
    return best


# -- keys of one query ----------------------------------------------------------------

# Citations repeat journal titles, volumes and surnames: compute each key once.
_title_key = lru_cache(maxsize=65536)(title_key)
_volume_keys = lru_cache(maxsize=65536)(volume_keys)
_first_page_key = lru_cache(maxsize=65536)(first_page_key)

@dataclass(frozen=True)
class QueryKeys:
    """What the scorer compares, computed once from a journal or book query."""

    is_book: bool
    issns: frozenset[str]
    isbns: frozenset[str]
    titles: tuple[str, ...]  # journal title, or the book's series and volume titles
    volume_title: str | None
    series_title: str | None
    authors: tuple[str, ...]
    volumes: tuple[str, ...]
    issue: tuple[str, ...]
    page: str | None
    year: int | None
    component: str | None
    edition: str | None
    bad_issns: frozenset[str] = frozenset()  # wrong check digit: typos, weak hints only
    implied_issns: frozenset[str] = frozenset()  # ISSNs of journals deposited under the query's title

    @classmethod
    def of(cls, query: JournalQuery | BookQuery) -> "QueryKeys":
        if isinstance(query, JournalQuery):
            title = _title_key(query.title)
            return cls(False, frozenset(query.issns), frozenset(), (title,) if title else (), None, None,
                       author_variants(query.author), _volume_keys(query.volume), _volume_keys(query.issue),
                       _first_page_key(query.page), query.year, None, None, frozenset(query.bad_issns))
        series, vol_title = _title_key(query.series_title), _title_key(query.volume_title)
        return cls(True, frozenset(query.issns), frozenset(query.isbns),
                   tuple(t for t in (vol_title, series) if t), vol_title, series,
                   author_variants(query.author), _volume_keys(query.volume), (), _first_page_key(query.page),
                   query.year, text_key(query.component), volume_key(query.edition), frozenset(query.bad_issns))


# -- scoring ------------------------------------------------------------------------

@dataclass(frozen=True)
class Evidence:
    """What the scorer knows beyond the candidate: the ISSNs of journals indexed here (of the lines' ISSNs)."""

    known_issns: frozenset[str] = frozenset()


NO_EVIDENCE = Evidence()
UNKNOWN_ISSN = "unknown ISSN"  # _source's verdict on an ISSN no journal here has, with no title to weigh
EXACT_AUTHOR = 0.9  # the first author's similarity that counts as the same name (misspelled at most)


def _numbers(keys: QueryKeys, c: Candidate) -> float | None:
    """Points for page, volume, issue and year; None when one of them rules the candidate out."""
    points = 0.0
    if keys.page:
        if c.first_page_key == keys.page:
            points += 3
        elif c.first_page_key:
            return None
        else:
            points -= 1
    if keys.volumes:
        if c.volume_key in keys.volumes:
            points += 2
        elif c.volume_key:
            return None
        else:
            points -= 0.5
    if keys.issue and c.issue_key:
        points += 1 if c.issue_key in keys.issue else -1.5
    if keys.year and c.year:
        gap = abs(keys.year - c.year)
        if gap > 1:
            return None
        points += 1 if gap == 0 else 0
    return points


def _numbers_exact(keys: QueryKeys, c: Candidate) -> bool:
    """First page, volume and year given and the record's, the issue not another: the same article's numbers."""
    return (keys.page is not None and c.first_page_key == keys.page and c.volume_key in keys.volumes
            and keys.year is not None and c.year == keys.year
            and (not keys.issue or not c.issue_key or c.issue_key in keys.issue))


def _first_author(keys: QueryKeys, c: Candidate) -> float:
    return best_name_similarity(keys.authors, [c.first_author_key] if c.first_author_key else c.names[:1])


def _author(keys: QueryKeys, c: Candidate, thresholds: Thresholds) -> float | None:
    """Points for the author; None when the query's author is none of the record's.

    The first author decides. A co-author named exactly (or transliterated)
    counts for less and only with the first page agreeing; a fuzzy co-author
    match counts for little and only for long names: in one issue, Chang and
    Zhang or Li and Liu are different people.
    """
    if not keys.authors:
        return 0.0
    if not c.names and not c.first_author_key:
        return -1.0
    if keys.is_book:
        similarity = best_name_similarity(keys.authors, c.names or [c.first_author_key])
        return None if similarity < thresholds.author_floor else 3 * similarity
    first = _first_author(keys, c)
    if first >= thresholds.author_floor:
        return 3 * first
    if len(c.names) < 2 or not keys.page or c.first_page_key != keys.page:
        return None
    coauthor = best_name_similarity(keys.authors, c.names[1:])
    if coauthor >= thresholds.coauthor_exact:
        return 1.5
    long_names = len(keys.authors[0]) >= thresholds.coauthor_long and any(
        len(n) >= thresholds.coauthor_long and name_similarity(keys.authors[0], n) >= thresholds.author_floor
        for n in c.names[1:])
    return 0.5 if long_names else None


def _one_apart(typo: str, issn: str) -> bool:
    """A mistyped ISSN: one character different, or two neighbours swapped."""
    if len(typo) != len(issn):
        return False
    diffs = [i for i, (a, b) in enumerate(zip(typo, issn)) if a != b]
    return len(diffs) == 1 or (len(diffs) == 2 and diffs[1] == diffs[0] + 1
                               and typo[diffs[0]] == issn[diffs[1]] and typo[diffs[1]] == issn[diffs[0]])


def _source(keys: QueryKeys, c: Candidate, thresholds: Thresholds,
            evidence: Evidence = NO_EVIDENCE) -> float | str | None:
    """Points for naming the right journal or book: an identifier, else a title (None: another one).

    ``UNKNOWN_ISSN`` when the query's only naming is a valid ISSN that is neither
    the record's nor any journal's here: ``score`` then asks for exact numbers.
    """
    if keys.isbns & c.isbns:
        return 3.0
    if keys.issns & c.issns:
        return (3.0 if not keys.is_book else 2.0) + _title_agreement(keys, c, thresholds)
    record_titles = c.container_title_keys
    if keys.issns and c.issns:  # a valid ISSN that is not the record's: another journal, or the other medium's
        if keys.titles:
            if not any(same_journal_title(q, r) for q in keys.titles for r in record_titles):
                return None
        elif keys.issns & evidence.known_issns:
            return None
        else:
            return UNKNOWN_ISSN
    near = bool(keys.bad_issns) and any(_one_apart(b, i) for b in keys.bad_issns for i in c.issns)
    if not keys.titles:
        if near:
            return thresholds.near_issn
        return thresholds.unknown_issn if keys.bad_issns and c.issns else 0.0
    if not record_titles:
        return -1.0
    similarity = max(title_similarity(q, r) for q in keys.titles for r in record_titles)
    if similarity < thresholds.title_reject:
        return None
    if similarity < thresholds.title_floor:
        return -3.0
    return 3 * similarity + (thresholds.near_issn / 3 if near else 0.0)


def _title_agreement(keys: QueryKeys, c: Candidate, thresholds: Thresholds) -> float:
    """With the identifier agreeing, a title adds a little or, when unlike, costs a little.

    The record's own titles decide (two titles deposited under one ISSN tell its
    records apart); one of its journal's other titles only spares the cost.
    """
    if not keys.titles or not c.own_title_keys:
        return 0.0
    similarity = max(title_similarity(q, r) for q in keys.titles for r in c.own_title_keys)
    if similarity >= 0.9:
        return 0.5
    if c.title_variants and any(same_journal_title(q, r) for q in keys.titles for r in c.title_variants):
        return 0.0
    return -1.5 if similarity < thresholds.title_floor else 0.0


def _book_shape(keys: QueryKeys, c: Candidate) -> float:
    """A book query with a page or component wants a chapter or paper; without, rather the book."""
    wants_item = bool(keys.page or keys.component)
    is_book_level = c.content_type in BOOK_LEVEL_TYPES
    if wants_item and is_book_level:
        return -2.0
    points = 1.0 if not wants_item and is_book_level else 0.0
    if keys.component and c.component_number:
        points += 2 if text_key(c.component_number) == keys.component else -1
    if keys.edition and c.edition_number:
        points += 0.5 if volume_key(c.edition_number) == keys.edition else -1
    return points


def score(keys: QueryKeys, c: Candidate, thresholds: Thresholds, evidence: Evidence = NO_EVIDENCE) -> float | None:
    """The candidate's points, or None when it cannot be the record the query means."""
    if keys.is_book:
        if c.content_type not in BOOK_ITEM_TYPES and c.content_type not in BOOK_LEVEL_TYPES:
            return None
    elif c.content_type not in JOURNAL_TYPES:
        return None
    numbers = _numbers(keys, c)
    if numbers is None:
        return None
    source = _source(keys, c, thresholds, evidence)
    if source is None:
        return None
    author = _author(keys, c, thresholds)
    if author is None:
        # A surname the deposit garbled: the ISSN and every number, the issue included, still say it is this one.
        same_article = (not keys.is_book and bool(keys.issns & c.issns) and _numbers_exact(keys, c)
                        and bool(keys.issue) and c.issue_key in keys.issue)
        if not same_article:
            return None
        author = thresholds.garbled_author
    if source == UNKNOWN_ISSN:
        # An ISSN typo that happens to be valid: exact numbers and the first author must decide.
        if not _numbers_exact(keys, c) or _first_author(keys, c) < EXACT_AUTHOR:
            return None
        source = thresholds.unknown_issn
    shape = _book_shape(keys, c) if keys.is_book else 0.0
    return numbers + author + shape + source


def decide(scored: list[tuple[float, Candidate]], thresholds: Thresholds) -> Outcome:
    """The winner, AMBIGUOUS when runners-up come close, NO_MATCH below the threshold."""
    passing = sorted(((s, c) for s, c in scored if s >= thresholds.accept), key=lambda sc: (-sc[0], sc[1].doi_key))
    if not passing:
        return NoMatch()
    best = passing[0][0]
    close = [c for s, c in passing if best - s < thresholds.margin]
    if len(close) == 1:
        return Found(close[0].doi)
    return Ambiguous(tuple(c.doi for c in close))


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
ISBN = aliased(MetadataIdentifier, name="by_isbn")  # the identifiers table also joins each candidate's own
FIRST_STRATEGIES = (
    Strategy("issn+volume+page", (L.first_page_key, L.volume_key, L.issn), _page_volume_issn_keys, L),
    Strategy("title+volume+page", (R.journal_title_key, R.volume_key, R.first_page_key), _title_volume_page_keys),
    Strategy("abbrev+volume+page", (R.journal_abbrev_key, R.volume_key, R.first_page_key),
             _title_volume_page_keys),
    Strategy("page+volume", (R.first_page_key, R.volume_key), _page_volume_keys_without_issn_or_title),
    Strategy("isbn", (ISBN.kind, ISBN.value), _isbn_keys, ISBN),
)
FALLBACK_STRATEGIES = (
    Strategy("page+volume", (R.first_page_key, R.volume_key), _page_volume_keys),  # e.g. the other medium's ISSN
    Strategy("title variant+volume+page", (L.first_page_key, L.volume_key, L.issn), _implied_issn_volume_page_keys,
             L),
    Strategy("author+year+page", (R.first_author_key, R.year, R.first_page_key), _author_year_page_keys),
    Strategy("author+page", (R.first_author_key, R.first_page_key), _author_page_keys),
    Strategy("author+year", (R.first_author_key, R.year), _author_year_keys),
    Strategy("author", (R.first_author_key,), _author_keys),
    Strategy("title+volume", (R.journal_title_key, R.volume_key), _title_volume_keys),
    Strategy("abbrev+volume", (R.journal_abbrev_key, R.volume_key), _title_volume_keys),
    Strategy("volume title", (R.volume_title_key,), _volume_title_keys),
    Strategy("series title", (R.series_title_key,), _series_title_keys),
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
    keys = RowsTable.of(dialect.name, [column.type for column in strategy.columns], "keys")
    statement = (select(*RECORD_COLUMNS, MetadataIdentifier.kind, MetadataIdentifier.value, keys.ordinal)
                 .select_from(keys.source)
                 .join(strategy.table, and_(*[column == key for column, key in zip(strategy.columns, keys.columns)])))
    if strategy.table is not MetadataRecord:
        statement = statement.join(MetadataRecord, MetadataRecord.doi_key == strategy.table.doi_key)
    statement = (statement.outerjoin(MetadataIdentifier, MetadataIdentifier.doi_key == MetadataRecord.doi_key)
                 .limit(MAX_ROWS_PER_LOOKUP))
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


def _lookup_rows(connection, strategy: Strategy, keys: Sequence[tuple]) -> list[tuple]:
    """The rows of one look-up for up to ``TERMS_PER_STATEMENT`` key tuples, as plain tuples.

    Run on the DB-API cursor of the session's connection: SQLAlchemy's row objects
    cost more than SQLite's index probes here.
    """
    table, prepared = _lookup(strategy, connection.dialect)
    with driver_cursor(connection, prepared.sql) as cursor:
        cursor.execute(prepared.sql, prepared.parameters(table.parameters(keys)))
        return cursor.fetchall()


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
        return outcomes

    # -- metadata queries ---------------------------------------------------------
    def _match(self, session: Session, queries: dict[int, QueryKeys]) -> dict[int, Outcome]:
        candidates: dict[int, dict[str, Candidate]] = {i: {} for i in queries}
        records: dict[str, Candidate] = {}
        self._gather(session, queries, FIRST_STRATEGIES, candidates, records)
        outcomes = self._score_all(session, queries, candidates, records)
        # A miss is looked at again more widely, unless page and volume were already searched
        # without an ISSN filter (an ISSN of the other medium, or a wrong one, narrows too much).
        retry = {i: queries[i] for i, outcome in outcomes.items()
                 if isinstance(outcome, NoMatch) and (not candidates[i] or not queries[i].page
                                                      or not queries[i].volumes or queries[i].issns
                                                      or (queries[i].titles and not queries[i].is_book))}
        if retry:
            retry = _with_implied_issns(session, retry)
            self._gather(session, retry, FALLBACK_STRATEGIES, candidates, records)
            outcomes.update(self._score_all(session, retry, candidates, records))
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
                candidates: dict[int, dict[str, Candidate]], records: dict[str, Candidate]) -> None:
        for strategy in strategies:
            wanted: dict[tuple, list[int]] = defaultdict(list)  # key tuple -> the lines asking
            for i, keys in queries.items():
                for key in strategy.keys_of(keys):
                    if None not in key:
                        wanted[key].append(i)
            if not wanted:
                continue
            width = len(RECORD_COLUMNS)
            connection = session.connection()
            for chunk in _chunks(sorted(wanted), TERMS_PER_STATEMENT):
                for row in _lookup_rows(connection, strategy, chunk):
                    kind = row[width]
                    candidate = records.get(row[0])
                    if candidate is None:
                        candidate = records[row[0]] = Candidate(*row[:width])
                    if kind == "issn":
                        candidate.issns.add(row[width + 1])
                    elif kind == "isbn":
                        candidate.isbns.add(row[width + 1])
                    for i in wanted[chunk[row[width + 2]]]:
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
                if _numbers(keys, c) is not None and _source(keys, c, self.thresholds) is not None:
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
             and any(c.issns and keys.issns.isdisjoint(c.issns) and _numbers_exact(keys, c)
                     and _first_author(keys, c) >= EXACT_AUTHOR for c in candidates[i].values())
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

