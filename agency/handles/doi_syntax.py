"""DOI name syntax: what a DOI must look like, its case-folded key, its prefix.

DOI names are case-insensitive for ASCII letters only, as Handle servers and the
DOI system fold them: the key upper-cases a-z and leaves every other character
alone (``10.5555/x-straße`` and ``10.5555/X-STRASSE`` are two DOIs, ``ﬁ`` is not
``FI``), so look-ups and uniqueness ignore ASCII case while the registrant's own
spelling is kept for display. Keys stored before this rule (full Unicode upper
case) are brought in line by ``handles.store.rekey_stored_names`` (``agency
handles rekey``).
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

MAX_DOI_LENGTH = 2048
MAX_URL_LENGTH = 2048
_DOI = re.compile(r"^(10\.[0-9]+(?:\.[0-9]+)*)/(.+)$", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SPACE = re.compile(r"\s")
_HTTP_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#][^\s\x00-\x1f\x7f-\x9f]*)?$")


_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def doi_key(doi: str) -> str:
    """The case-folded key: ASCII letters upper-cased, nothing else changed."""
    return doi.upper() if doi.isascii() else doi.translate(_ASCII_UPPER)


def format_character(text: str) -> str | None:
    """The first invisible formatting character in ``text`` (Unicode category Cf: bidi controls,
    zero-width joiners and spaces, soft hyphen, BOM), described as "U+200D ZERO WIDTH JOINER"."""
    if text.isascii():
        return None
    for char in text:
        if unicodedata.category(char) == "Cf":
            return f"U+{ord(char):04X} {unicodedata.name(char, 'FORMAT CHARACTER')}"
    return None


def doi_prefix(doi: str) -> str:
    return doi.split("/", 1)[0].lower()


def doi_problem(doi: str) -> str | None:
    """Why ``doi`` is not an acceptable DOI name, or None when it is."""
    if not doi:
        return "DOI is empty"
    if len(doi) > MAX_DOI_LENGTH:
        return f"DOI is {len(doi)} characters long; at most {MAX_DOI_LENGTH} are allowed"
    if _CONTROL.search(doi):
        return "DOI contains a control character"
    if _SPACE.search(doi):
        return "DOI contains white space"
    invisible = format_character(doi)
    if invisible:
        return (f"DOI contains an invisible formatting character ({invisible}); such characters make "
                "DOIs that look alike but differ. Remove it")
    if not _DOI.match(doi):
        return "DOI must have the form 10.<digits>[.<digits>...]/<suffix>"
    return None


def url_problem(url: str, schemes: tuple[str, ...] = ("http", "https")) -> str | None:
    """Why ``url`` cannot be a DOI's resolution URL, or None when it can (``schemes``: DataCite adds ftp)."""
    if not url:
        return "URL is empty"
    if len(url) > MAX_URL_LENGTH:
        return f"URL is {len(url)} characters long; at most {MAX_URL_LENGTH} are allowed"
    if _HTTP_URL.match(url) and ".." not in url.split("/", 3)[2]:
        return None  # the common case, decided without the slower parse below
    if _CONTROL.search(url) or _SPACE.search(url):
        return "URL contains white space or a control character"
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"URL cannot be parsed: {exc}"
    if parts.scheme.lower() not in schemes:
        listed = [f"{scheme}://" for scheme in schemes]
        return f"URL must be absolute and start with {', '.join(listed[:-1])} or {listed[-1]}"
    if not parts.hostname:
        return "URL has no host name"
    return None
