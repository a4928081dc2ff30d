"""Keys that only queries need: first pages of page ranges, roman and arabic volume numbers.

Citations give "239-245" or "pp. 239–45" where the deposit gave first page
239, and "XII" where the deposit said volume 12 (or the reverse). These turn
a query's text into the keys of ``agency.metadata.text_keys`` that the index stores;
the folding itself (case, accents, letter prefixes like ``e15743``) is theirs.
"""

from __future__ import annotations

import re

from agency.metadata.text_keys import page_key, volume_key

_PAGE_LABEL = re.compile(r"^\s*(?:pp?|pages?)\b\.?\s*", re.IGNORECASE)
_RANGE = re.compile(r"\s*(?:[-\u2010-\u2015\u2212]|\bto\b)\s*", re.IGNORECASE)
_ROMAN_VALUES = (("m", 1000), ("cm", 900), ("d", 500), ("cd", 400), ("c", 100), ("xc", 90), ("l", 50),
                 ("xl", 40), ("x", 10), ("ix", 9), ("v", 5), ("iv", 4), ("i", 1))
_ROMAN = re.compile(r"^m{0,3}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})$")
MAX_ROMAN = 3999


def first_page_key(text: str | None) -> str | None:
    """The key of the first page a citation gives: "pp. 239-245" → "239", "e15743" → "15743"."""
    if not text:
        return None
    first = _RANGE.split(_PAGE_LABEL.sub("", text).strip(), maxsplit=1)[0]
    return page_key(first)


def to_roman(number: int) -> str:
    out = []
    for numeral, value in _ROMAN_VALUES:
        count, number = divmod(number, value)
        out.append(numeral * count)
    return "".join(out)


def roman_value(text: str) -> int | None:
    """The value of a well-formed lower-case roman numeral, else None."""
    if not text or not _ROMAN.match(text):
        return None
    total, rest = 0, text
    for numeral, value in _ROMAN_VALUES:
        while rest.startswith(numeral):
            total += value
            rest = rest[len(numeral):]
    return total or None


def volume_keys(text: str | None) -> tuple[str, ...]:
    """The volume's key and, when it is a plain number, its other spelling: "XII" ↔ "12"."""
    key = volume_key(text)
    if key is None:
        return ()
    if key.isdigit() and 0 < int(key) <= MAX_ROMAN:
        return (key, to_roman(int(key)))
    value = roman_value(key)
    if value is not None:
        return (key, str(value))
    return (key,)
