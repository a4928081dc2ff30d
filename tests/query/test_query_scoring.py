"""The matcher's pieces that need no database: similarity, abbreviations, scoring and the decision."""

from __future__ import annotations

from agency.query.matcher import (
    Candidate, QueryKeys, Thresholds, abbreviation_score, author_variants, decide, name_similarity, score,
    title_similarity,
)
from agency.query.piped_format import Ambiguous, Found, JournalQuery, NoMatch


def candidate(doi="10.5555/a", page="239", volume="12", issue="3", year=2004, author="smith",
              journal="journal of synthetic results", issns=("1234-5679",), content_type="journal_article"):
    return Candidate(doi.upper(), doi, content_type, "journal", journal, None, None, None, volume, issue, page,
                     year, author, None, None, set(issns), set(), [author] if author else [], True)


def keys(issns=("1234-5679",), title="", author="Smith", volume="12", issue="", page="239", year=2004):
    return QueryKeys.of(JournalQuery(issns=tuple(issns), title=title, author=author, volume=volume, issue=issue,
                                     page=page, year=year, key="k"))


def test_abbreviations_of_journal_titles():
    assert abbreviation_score("j synth res", "journal of synthetic results") == 1.0
    assert abbreviation_score("biol j linn soc", "biological journal of the linnean society") == 1.0
    assert abbreviation_score("proc natl acad sci usa",
                              "proceedings of the national academy of sciences of the united states of america") == 1.0
    assert abbreviation_score("j mol biol", "journal of molecular biology") == 1.0
    assert abbreviation_score("j synth res", "annals of measured things") == 0.0
    assert 0 < abbreviation_score("j synth", "journal of synthetic results") < 1.0
    assert title_similarity("journal of synthetic results", "j synth res") == 1.0


def test_surnames_misspelled_and_transliterated():
    assert name_similarity("mueller", "muller") >= 0.9
    assert name_similarity("kowalsky", "kowalski") >= 0.8
    assert name_similarity("smith", "tanaka") < 0.5
    assert author_variants("Smith J.") == ("smithj", "smith")
    assert author_variants("van der Berg") == ("vanderberg", "berg", "van", "der")


def test_numbers_are_exact_and_year_may_be_one_off():
    t = Thresholds()
    assert score(keys(), candidate(), t) >= t.accept
    assert score(keys(page="240"), candidate(), t) is None
    assert score(keys(volume="13"), candidate(), t) is None
    assert score(keys(volume="XII"), candidate(), t) >= t.accept
    assert score(keys(year=2005), candidate(), t) >= t.accept
    assert score(keys(year=2006), candidate(), t) is None


def test_author_far_off_rules_out_and_other_issn_is_not_held_against():
    t = Thresholds()
    assert score(keys(author="Tanaka"), candidate(), t) is None
    other_medium = score(keys(issns=("2049-3630",), title="J Synth Res"), candidate(), t)
    assert other_medium is not None and other_medium >= t.accept
    wrong_journal = score(keys(issns=(), title="Acta Exempli", author=""), candidate(), t)
    assert wrong_journal is None


def test_only_journal_articles_answer_journal_queries():
    assert score(keys(), candidate(content_type="component"), Thresholds()) is None


def test_decision_found_ambiguous_no_match_and_deterministic():
    t = Thresholds()
    a, b = candidate("10.5555/a"), candidate("10.5555/b")
    assert decide([(9.0, a)], t) == Found("10.5555/a")
    assert decide([(9.0, b), (9.0, a)], t) == Ambiguous(("10.5555/a", "10.5555/b"))
    assert decide([(9.0, a), (6.5, b)], t) == Found("10.5555/a")
    assert decide([(5.0, a)], t) == NoMatch()
    assert decide([], t) == NoMatch()
