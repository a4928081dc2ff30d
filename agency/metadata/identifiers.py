"""ISSN and ISBN: normalized forms and check digits.

Indexing and querying compare identifiers in one canonical form: ISSN as
``NNNN-NNNC`` and ISBN as 13 digits (ISBN-10 converted), so an ISBN-10 in a
query finds the ISBN-13 that was deposited, and hyphens or spaces never matter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NON_ID = re.compile(r"[^0-9Xx]")


@dataclass(frozen=True)
class Identifier:
    """A parsed identifier: its canonical form, whether its check digit is right, and the
    check character its digits call for (what to tell a registrant who got it wrong)."""

    canonical: str
    valid_check_digit: bool
    expected_check: str


def _digits(raw: str) -> str:
    text = raw.strip()
    text = re.sub(r"^(?:ISSN|ISBN)(?:-1[03])?:?\s*", "", text, flags=re.IGNORECASE)
    return _NON_ID.sub("", text).upper()


def issn_check_char(first7: str) -> str:
    total = sum(int(d) * w for d, w in zip(first7, range(8, 1, -1)))
    rest = (11 - total % 11) % 11
    return "X" if rest == 10 else str(rest)


def parse_issn(raw: str | None) -> Identifier | None:
    """``1234-5679`` from any spelling; None when it cannot be an ISSN at all."""
    if not raw:
        return None
    digits = _digits(raw)
    if len(digits) != 8 or not digits[:7].isdigit() or "X" in digits[:7]:
        return None
    check = issn_check_char(digits[:7])
    return Identifier(f"{digits[:4]}-{digits[4:]}", check == digits[7], check)


def isbn13_check_digit(first12: str) -> str:
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(first12))
    return str((10 - total % 10) % 10)


def isbn10_check_char(first9: str) -> str:
    total = sum(int(d) * w for d, w in zip(first9, range(10, 1, -1)))
    rest = (11 - total % 11) % 11
    return "X" if rest == 10 else str(rest)


def parse_isbn(raw: str | None) -> Identifier | None:
    """The 13-digit form of an ISBN-10 or ISBN-13; None when it cannot be an ISBN at all."""
    if not raw:
        return None
    digits = _digits(raw)
    if len(digits) == 10 and digits[:9].isdigit():
        check = isbn10_check_char(digits[:9])
        body = "978" + digits[:9]
        return Identifier(body + isbn13_check_digit(body), check == digits[9], check)
    if len(digits) == 13 and digits.isdigit():
        check = isbn13_check_digit(digits[:12])
        return Identifier(digits, check == digits[12], check)
    return None
