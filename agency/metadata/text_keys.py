"""Normalized keys for matching metadata: one definition for indexing and querying.

The metadata load stores these keys beside the deposited text and the query
matcher computes them from the query the same way, so "Journal of Física,"
and "journal of fisica" meet in one index look-up. Keys are lower-case ASCII
where the text allows it: accents are stripped (NFKD, combining marks
dropped), punctuation becomes a space, runs of white space become one space.
"""

from __future__ import annotations

import html
import re
import unicodedata

_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)
_LEADING_ZEROS = re.compile(r"^0+(?=\d)")
_PAGE_PREFIX = re.compile(r"^[a-z]+(?=\d)")
_PAGE_RANGE = re.compile(r"\s*[-\u2010-\u2015\u2212]\s*")
_VOLUME_WORD = re.compile(r"^(?:vol(?:ume)?|no|nr|issue|iss|num(?:ber)?|v|n)\b\.?\s*", re.IGNORECASE)
_LEADING_ARTICLE = re.compile(r"^(?:the|a|an) ")
_ARTICLES = ("the ", "a ", "an ")  # what _LEADING_ARTICLE can match
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
_NOTE = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")  # "(*package author*)", "[deceased]"
_ENTITY_TEXT = re.compile(r"&(?:[a-zA-Z][a-zA-Z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});")
_SURNAME_MARKS = ("(", "[", ",", "&")  # only names holding one of these need cleaning

MAX_KEY_LENGTH = 512
# ASCII letters lower-cased, digits kept, every other byte a space: for ASCII text, _NOT_WORD's runs of
# non-word characters (underscore included) become single spaces once the result is split and joined.
_ASCII_KEY_BYTES = bytes(
    (c | 0x20 if chr(c).isalpha() else c) if c < 128 and chr(c).isalnum() else 0x20 for c in range(256))


def fold(text: str) -> str:
    """Lower-case, accents stripped, ligatures expanded (ﬁ → fi, æ stays æ)."""
    if text.isascii():  # most metadata: nothing to decompose
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return stripped.casefold()


def text_key(text: str | None) -> str | None:
    """The comparable form of a title or name; None when nothing comparable is left."""
    if not text:
        return None
    if text.isascii():  # most metadata: one C pass does what fold and _NOT_WORD do (a third of the time)
        key = b" ".join(text.encode("ascii").translate(_ASCII_KEY_BYTES).split()).decode("ascii")
    else:
        key = _NOT_WORD.sub(" ", fold(text)).strip()
    return key[:MAX_KEY_LENGTH] or None


def title_key(text: str | None) -> str | None:
    """A title's key: like ``text_key`` and a leading "the", "a" or "an" dropped."""
    key = text_key(text)
    if key is None:
        return None
    if not key.startswith(_ARTICLES):  # most titles: no pattern search
        return key
    return _LEADING_ARTICLE.sub("", key) or key


def clean_surname(text: str | None) -> str | None:
    """A deposited or cited surname without what is not the name.

    Deposits carry notes and mistakes in the surname element: entity text that
    was escaped twice ("’t&nbsp;Hart", "M&uuml;ller"), parenthesized or
    bracketed notes ("Policastro (*package author and creator*)") and the
    given names after a comma ("Kim, Researcher"). Typographic apostrophes
    need nothing here: ``text_key`` drops all punctuation alike.
    """
    if not text or not any(mark in text for mark in _SURNAME_MARKS):
        return text
    if "&" in text:
        text = _ENTITY_TEXT.sub(lambda m: html.unescape(m.group(0)), text)
    if "(" in text or "[" in text:
        text = _NOTE.sub(" ", _NOTE.sub(" ", text))  # twice: one level of nesting
    if "," in text:
        head = text.split(",", 1)[0]
        if head.strip():
            text = head
    return text


def name_key(text: str | None) -> str | None:
    """A person's surname key: ``text_key`` of the cleaned surname (``clean_surname``) with the spaces
    removed too ("Van der Berg" = "vanderberg", "Kim, Researcher" = "kim")."""
    key = text_key(clean_surname(text)) or text_key(text)  # a name that is all note stays what it was
    return key.replace(" ", "") if key else None


def _number_key(text: str | None) -> str | None:
    key = text_key(text)
    if key is None:
        return None
    return " ".join(_LEADING_ZEROS.sub("", part) for part in key.split(" "))


def volume_key(text: str | None) -> str | None:
    """A volume or issue key: "Vol. 012" = "12"; words like "Suppl 2" stay, folded."""
    if not text:
        return None
    return _number_key(_VOLUME_WORD.sub("", text.strip()))


def page_key(text: str | None) -> str | None:
    """A page key: letter prefixes stripped ("e15743" = "15743", "S12" = "12"), leading zeros dropped;
    of a range deposited as a first page ("239-245") only its first page."""
    if text:
        text = _PAGE_RANGE.split(text.strip(), maxsplit=1)[0] or text
    key = text_key(text)
    if key is None:
        return None
    key = key.replace(" ", "")
    key = _PAGE_PREFIX.sub("", key)
    return _LEADING_ZEROS.sub("", key) or key


def year_of(text: str | None) -> int | None:
    """The four-digit year in a date or year text, or None."""
    if not text:
        return None
    match = _YEAR.search(text)
    return int(match.group(1)) if match else None
