"""DOI name syntax: what a DOI must look like, its case-folded key, its prefix.

DOI names are case-insensitive (ASCII case folding, as the DOI system and
Handle.Net servers do it: "ü" stays "ü"); the key upper-cases ASCII letters so look-ups and uniqueness ignore case while the
registrant's own spelling is kept for display.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MAX_DOI_LENGTH = 2048
MAX_URL_LENGTH = 2048
_DOI = re.compile(r"^(10\.[0-9]+(?:\.[0-9]+)*)/(.+)$", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SPACE = re.compile(r"\s")
_HTTP_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#][^\s\x00-\x1f\x7f-\x9f]*)?$")


_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def doi_key(doi: str) -> str:
    """The look-up key of a DOI or handle: ASCII letters upper-cased, everything else as given."""
    return doi.upper() if doi.isascii() else doi.translate(_ASCII_UPPER)


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
