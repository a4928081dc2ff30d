"""Normalized keys: the same function on both sides (index and query) makes spellings meet."""

from __future__ import annotations

import pytest

from agency.metadata.text_keys import MAX_KEY_LENGTH, fold, name_key, page_key, text_key, title_key, volume_key, year_of


@pytest.mark.parametrize("a, b", [
    ("Journal of Física", "journal of fisica"),
    ("J. Phys.  Chem. (A)", "j phys chem a"),
    ("Ångström—Studies", "angstrom studies"),
    ("ﬁnite  ﬁelds", "finite fields"),
    ("  Tab\tand\nnewline ", "tab and newline"),
])
def test_text_keys_fold_case_accents_punctuation_and_space(a, b):
    assert text_key(a) == text_key(b) == b


def test_title_key_drops_a_leading_article_only():
    assert title_key("The Journal of Tests") == title_key("journal of tests") == "journal of tests"
    assert title_key("A study of things") == "study of things"
    assert title_key("The") == "the"  # nothing else left: keep it
    assert title_key("Theory of the thing") == "theory of the thing"


def test_name_key_ignores_spaces_and_particles_spelling():
    assert name_key("Van der Berg") == name_key("vanderberg") == "vanderberg"
    assert name_key("O'Brien") == name_key("OBrien") == "obrien"
    assert name_key("Müller") == "muller"


@pytest.mark.parametrize("deposited, cited", [
    ("Kim, Researcher", "Kim"), ("Policastro (*package author and creator*)", "Policastro"),
    ("’t&nbsp;Hart", "'t Hart"), ("M&uuml;ller", "Müller"), ("D&#8217;Souza", "D'Souza"),
    ("Okafor [deceased]", "Okafor"), ("Nguyễn (ed.)", "Nguyen"),
])
def test_name_key_cleans_what_deposits_put_in_a_surname(deposited, cited):
    assert name_key(deposited) == name_key(cited)


@pytest.mark.parametrize("a, b", [("Kim, Researcher", "Researcher"), ("Smith & Jones", "Smith"),
                                  ("Policastro (author)", "Author"), ("’t Hart", "Hart")])
def test_name_key_cleaning_keeps_the_name_itself(a, b):
    assert name_key(a) != name_key(b)
    assert name_key("(anonymous)") == "anonymous"  # nothing but a note: the note is all there is


@pytest.mark.parametrize("raw, key", [("e15743", "15743"), ("S12", "12"), ("0012", "12"), ("D706", "706"),
                                      ("A1", "1"), ("xii", "xii"), ("12-15", "12"), ("239–245", "239"), ("-5", "5"), ("", None), (None, None)])
def test_page_keys(raw, key):
    assert page_key(raw) == key


@pytest.mark.parametrize("raw, key", [("Vol. 012", "12"), ("12", "12"), ("Suppl 2", "suppl 2"),
                                      ("Issue 3", "3"), ("no. 4", "4"), ("3-4", "3 4")])
def test_volume_keys(raw, key):
    assert volume_key(raw) == key


def test_empty_and_punctuation_only_text_has_no_key():
    assert text_key("") is None and text_key("  ...  ") is None and title_key(None) is None


def test_keys_are_bounded():
    assert len(text_key("word " * 1000)) <= MAX_KEY_LENGTH


def test_year_of():
    assert year_of("2020-01-01") == 2020 and year_of("Nov. 13-14, 2018") == 2018 and year_of("n.d.") is None


def test_fold_keeps_non_latin_letters():
    assert text_key("Журнал физики") == "журнал физики"
    assert fold("ÉCOLE") == "ecole"


def test_ascii_text_keys_follow_the_general_rule_character_by_character():
    """Plain ASCII takes a byte-table shortcut; it must give exactly what folding and the word pattern give."""
    import random

    from agency.metadata.text_keys import _NOT_WORD

    def general(text: str) -> str | None:
        return _NOT_WORD.sub(" ", fold(text)).strip()[:MAX_KEY_LENGTH] or None

    every = "".join(map(chr, range(128)))
    samples = [every, every[::-1], "_", "a_b", "A  B\x1c\x1fC", " " * 3, "x" * (MAX_KEY_LENGTH + 9), " y" * 400]
    rnd = random.Random(18)
    samples += ["".join(rnd.choice(every) for _ in range(rnd.randrange(1, 12))) for _ in range(20_000)]
    assert [text_key(s) for s in samples] == [general(s) for s in samples]
