"""DOI and URL syntax checks used per record."""

import pytest

from agency.handles.doi_syntax import doi_key, doi_prefix, doi_problem, url_problem


@pytest.mark.parametrize("doi", [
    "10.5555/abc", "10.1000.10/x", "10.1002/(SICI)1097-4636(199709)36:3<297::AID-JBM3>3.0.CO;2-G",
    "10.5555/a/b/c", "10.5555/ünï", "10.5555/" + "x" * 2000,
])
def test_good_dois(doi):
    assert doi_problem(doi) is None


@pytest.mark.parametrize("doi, words", [
    ("", "empty"), ("11.5555/x", "form"), ("10.5555", "form"), ("10.5555/", "form"), ("10.abc/x", "form"),
    ("10.5555/a b", "white space"), (" 10.5555/x", "white space"), ("10.5555/x\x00", "control"),
    ("10.5555/x\u0085y", "control"), ("10.5555/" + "x" * 2050, "characters long"),
])
def test_bad_dois_say_why(doi, words):
    assert words in doi_problem(doi)


def test_key_is_case_insensitive_and_prefix_lower_case():
    assert doi_key("10.5555/AbC") == doi_key("10.5555/aBc")
    assert doi_prefix("10.5555/AbC") == "10.5555"


@pytest.mark.parametrize("url", ["https://example.org/a", "http://example.org:8080/a?b=c#d", "HTTPS://EXAMPLE.ORG/"])
def test_good_urls(url):
    assert url_problem(url) is None


@pytest.mark.parametrize("url, words", [
    ("", "empty"), ("ftp://example.org/a", "http"), ("/relative/path", "http"), ("example.org/a", "http"),
    ("https:///nohost", "host"), ("https://exa mple.org/", "white space"), ("javascript:alert(1)", "http"),
    ("https://example.org/" + "a" * 3000, "characters long"), ("http://[::1/", "parsed"),
])
def test_bad_urls_say_why(url, words):
    assert words in url_problem(url)


def test_keys_fold_ascii_case_only():
    assert doi_key("10.5555/abc") == doi_key("10.5555/ABC") == "10.5555/ABC"
    assert doi_key("10.5555/straße-ü") == "10.5555/STRAßE-ü"  # no "SS", no "Ü": Handle.Net folds ASCII only
