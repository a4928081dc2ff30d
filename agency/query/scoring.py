"""Scoring piped-query candidates: similarity of titles and names, journal abbreviations, the
evidence each field gives, and the decision between candidates. Needs no database: the matcher
(``agency.query.matcher``) gathers candidates and hands them here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Sequence

from rapidfuzz import fuzz

from agency.query.piped_format import Ambiguous, BookQuery, Found, JournalQuery, NoMatch, Outcome
from agency.query.keys import first_page_key, volume_keys
from agency.metadata.text_keys import name_key, text_key, title_key, volume_key

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
UNKNOWN_ISSN = "unknown ISSN"  # source_evidence's verdict on an ISSN no journal here has, with no title to weigh
EXACT_AUTHOR = 0.9  # the first author's similarity that counts as the same name (misspelled at most)


def numbers_evidence(keys: QueryKeys, c: Candidate) -> float | None:
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


def numbers_exact(keys: QueryKeys, c: Candidate) -> bool:
    """First page, volume and year given and the record's, the issue not another: the same article's numbers."""
    return (keys.page is not None and c.first_page_key == keys.page and c.volume_key in keys.volumes
            and keys.year is not None and c.year == keys.year
            and (not keys.issue or not c.issue_key or c.issue_key in keys.issue))


def first_author_similarity(keys: QueryKeys, c: Candidate) -> float:
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
    first = first_author_similarity(keys, c)
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


def source_evidence(keys: QueryKeys, c: Candidate, thresholds: Thresholds,
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
    numbers = numbers_evidence(keys, c)
    if numbers is None:
        return None
    source = source_evidence(keys, c, thresholds, evidence)
    if source is None:
        return None
    author = _author(keys, c, thresholds)
    if author is None:
        # A surname the deposit garbled: the ISSN and every number, the issue included, still say it is this one.
        same_article = (not keys.is_book and bool(keys.issns & c.issns) and numbers_exact(keys, c)
                        and bool(keys.issue) and c.issue_key in keys.issue)
        if not same_article:
            return None
        author = thresholds.garbled_author
    if source == UNKNOWN_ISSN:
        # An ISSN typo that happens to be valid: exact numbers and the first author must decide.
        if not numbers_exact(keys, c) or first_author_similarity(keys, c) < EXACT_AUTHOR:
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
