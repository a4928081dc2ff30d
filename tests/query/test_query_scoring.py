"""The matcher's pieces that need no database: similarity, abbreviations, scoring and the decision."""

from __future__ import annotations

from dataclasses import replace

from agency.query.scoring import (
    Candidate, Evidence, QueryKeys, Thresholds, abbreviation_score, author_variants, decide, name_similarity,
    same_journal_title, score, title_similarity,
)
from agency.query.piped_format import Ambiguous, Found, JournalQuery, NoMatch


def candidate(doi="10.5555/a", page="239", volume="12", issue="3", year=2004, author="smith",
              journal="journal of synthetic results", issns=("1234-5679",), content_type="journal_article",
              names=None, variants=()):
    names = names if names is not None else ([author] if author else [])
    return Candidate(doi.upper(), doi, content_type, "journal", journal, None, None, None, volume, issue, page,
                     year, author, None, None, set(issns), set(), names, True, tuple(variants))


def keys(issns=("1234-5679",), title="", author="Smith", volume="12", issue="", page="239", year=2004,
         bad_issns=()):
    return QueryKeys.of(JournalQuery(issns=tuple(issns), title=title, author=author, volume=volume, issue=issue,
                                     page=page, year=year, key="k", bad_issns=tuple(bad_issns)))


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


# -- the kinds of issue 19, each with a case that must match and one that must not ----------

JOSS = dict(journal="journal of open source software", issns=("2475-9066",))


def test_sibling_journal_issn_and_title_rule_the_candidate_out():
    t = Thresholds()
    sibling = keys(issns=("2576-3555",), title="Journal of Open Source Education", author="Smith")
    assert score(sibling, candidate(**JOSS), t) is None
    title_only = keys(issns=(), title="Journal of Open Source Education")
    assert score(title_only, candidate(**JOSS), t) is None
    assert not same_journal_title("journal of open source education", "journal of open source software")
    assert title_similarity("letters in organic geochemistry", "letters in organic chemistry") == 0.0
    # the same journal named with the other medium's ISSN, or abbreviated, still matches
    other_medium = keys(issns=("2576-3555",), title="J Open Source Softw")
    assert score(other_medium, candidate(**JOSS), t) >= t.accept
    assert score(keys(issns=("2576-3555",), title="Journal of Open Source Sofware"), candidate(**JOSS), t) >= t.accept


def test_a_valid_issn_alone_that_is_not_the_records_needs_every_number_exact():
    t = Thresholds()
    typo = keys(issns=("2049-3630",), issue="3")  # valid, but a typo for 1234-5679: no journal here has it
    assert score(typo, candidate(), t) >= t.accept
    assert score(typo, candidate(), t, Evidence(frozenset({"2049-3630"}))) is None  # another journal indexed here
    assert score(replace(typo, year=2005), candidate(), t) is None  # year off by one: not exact
    assert score(keys(issns=("2049-3630",), issue="3", author="Smyth"), candidate(), t) is None
    assert score(keys(issns=("2049-3630",), issue="3", page=""), candidate(), t) is None


def test_an_issn_with_a_wrong_check_digit_is_a_weak_hint():
    t = Thresholds()
    near = keys(issns=(), bad_issns=("1234-5678",))  # one character from the record's 1234-5679
    assert score(near, candidate(), t) >= t.accept
    swapped = keys(issns=(), bad_issns=("1243-5679",), page="", issue="3")
    far = keys(issns=(), bad_issns=("9999-0000",), page="", issue="3")
    assert score(swapped, candidate(), t) > score(far, candidate(), t)
    assert score(far, candidate(), t) < t.accept  # a far typo names no journal: volume, issue, year, author are not enough
    with_title = keys(issns=(), bad_issns=("9999-0000",), title="J Synth Res")
    assert score(with_title, candidate(), t) >= t.accept


def test_exact_issn_and_numbers_outweigh_a_garbled_deposited_surname():
    t = Thresholds()
    garbled = candidate(author="researcherxkq", names=["researcherxkq"])
    assert score(keys(author="Kim", issue="3"), garbled, t) >= t.accept
    assert score(keys(author="Kim", issue=""), garbled, t) is None  # no issue: not every number
    assert score(keys(author="Kim", issue="3", issns=(), title="J Synth Res"), garbled, t) is None  # no ISSN
    assert score(keys(author="Kim", issue="3", year=2005), garbled, t) is None


def test_the_first_author_dominates_fuzzy_short_coauthors():
    t = Thresholds()
    zhang = candidate("10.5555/zhang", page="10", author="zhang", names=["zhang", "okafor"])
    chang = candidate("10.5555/chang", page="40", author="wu", names=["wu", "chang"])
    no_page = keys(author="Zhang", page="", issue="3")
    scored = [(score(no_page, c, t), c) for c in (zhang, chang)]
    assert decide([(p, c) for p, c in scored if p is not None], t) == Found("10.5555/zhang")
    assert score(no_page, chang, t) is None  # Chang is not Zhang, even as a co-author
    coauthor = candidate("10.5555/co", page="40", author="wu", names=["wu", "zhang"])
    assert score(no_page, coauthor, t) is None  # a co-author named without the first page: too weak
    assert score(keys(author="Zhang", page="40"), coauthor, t) >= t.accept  # with it, enough
    assert score(keys(author="Zhang", page="40"), coauthor, t) < score(keys(author="Wu", page="40"), coauthor, t)


def test_journal_title_variants_learnt_from_deposits():
    t = Thresholds()
    long_form = keys(issns=(), title="Proceedings of the Synthetic Results Conferences", year=2005)
    short = candidate(journal="synthetic results proceedings")
    assert score(long_form, short, t) is None or score(long_form, short, t) < t.accept
    learnt = candidate(journal="synthetic results proceedings",
                       variants=("proceedings of the synthetic results conferences",))
    assert score(long_form, learnt, t) >= t.accept
    assert score(keys(issns=(), title="Proceedings of the Marine Results Conferences"), learnt, t) is None


def test_short_or_differently_starting_surnames_are_other_people():
    assert name_similarity("li", "liu") < Thresholds().author_floor
    assert name_similarity("wang", "wong") < Thresholds().author_floor
    assert name_similarity("zhang", "chang") < Thresholds().author_floor
    assert name_similarity("coen", "cohen") >= Thresholds().author_floor  # a misspelling keeps its first letter
    assert name_similarity("mueller", "muller") >= 0.9
