"""Markup inside one element is bounded: too many attributes or children answer 413 naming the limit."""

from __future__ import annotations

import pytest

from agency.deposit.validation import MarkupLimits, OVER_LIMITS, check_markup_limits, RefusedFile
from batchgen import Article, deposit_xml
from conftest import basic_headers
from logcheck import log_records, parse_valid_log


def wide_attributes(count: int, padding: int = 0) -> bytes:
    attributes = b" ".join(b'a%d="v"' % n + b" " * padding for n in range(count))
    return deposit_xml([Article("10.5555/hostile.1", title="T")]).replace(
        b"<title>T</title>", b"<title " + attributes + b">T</title>")


def many_children(count: int) -> bytes:
    return deposit_xml([Article("10.5555/hostile.2", title="T")]).replace(
        b"<title>T</title>", b"<title>" + b"<i/>" * count + b"</title>")


@pytest.mark.parametrize("data, words", [
    (wide_attributes(300_000), "AGENCY_MAX_ATTRIBUTES_PER_ELEMENT"),
    (wide_attributes(20_000, padding=40), "AGENCY_MAX_ATTRIBUTES_PER_ELEMENT"),  # not dense, still counted
    (many_children(1_000_000), "AGENCY_MAX_CHILDREN_PER_ELEMENT"),
])
def test_hostile_markup_is_413_naming_the_limit_and_recorded(client, alice, data, words):
    headers = basic_headers("alice", "alice-password")
    response = client.post("/v1/deposits", data=data, headers=headers)
    assert response.status_code == 413, response.get_json()
    body = response.get_json()
    assert body["status"] == "refused" and body["refusal"]["kind"] == OVER_LIMITS
    assert words in body["refusal"]["errors"][0]["message"]
    assert "unknown error" not in response.get_data(as_text=True)
    log = parse_valid_log(client.get(f"/v1/deposits/{body['submission_id']}/log", headers=headers).data)
    ((status, _doi, message),) = log_records(log)
    assert status == "Failure" and words in message


def test_markup_within_the_limits_passes(tmp_path):
    path = tmp_path / "ok.xml"
    path.write_bytes(many_children(5_000))
    check_markup_limits(path, MarkupLimits(max_children_per_element=5_000, dense_fraction=0.01))
    path.write_bytes(wide_attributes(256))
    check_markup_limits(path, MarkupLimits(max_attributes_per_element=256, dense_fraction=0.01))
    with pytest.raises(RefusedFile):
        check_markup_limits(path, MarkupLimits(max_attributes_per_element=255, dense_fraction=0.01))


def test_a_long_text_without_markup_is_not_mistaken_for_attributes(tmp_path):
    text = b"word = value; " * 200_000  # 2.8 MB of text with '=' but no tag
    path = tmp_path / "text.xml"
    path.write_bytes(deposit_xml([Article("10.5555/long.1", title="T")]).replace(b"<title>T</title>",
                                                                              b"<title>" + text + b"</title>"))
    check_markup_limits(path, MarkupLimits())


def one_journal(articles: int) -> bytes:
    """Ordinary markup, all in one body item: a <journal> holding every article."""
    return deposit_xml([Article(f"10.5555/one-journal.{n}") for n in range(articles)], articles_per_journal=articles)


def test_a_body_item_over_its_byte_limit_is_413_naming_the_limit(settings, alice):
    from agency.app import create_app
    from agency.services import build_agency

    limited = build_agency(settings.replace(max_body_item_bytes=256 * 1024))
    try:
        client = create_app(agency=limited).test_client()
        headers = basic_headers("alice", "alice-password")
        big = one_journal(1_000)  # about 570 KB in one <journal>
        response = client.post("/v1/deposits", data=big, headers=headers)
        assert response.status_code == 413, response.get_json()
        message = response.get_json()["refusal"]["errors"][0]["message"]
        assert "AGENCY_MAX_BODY_ITEM_BYTES" in message and "262144 bytes" in message and "Split it" in message
        # The same articles split one per journal element: every body item is small, the file is accepted.
        split = deposit_xml([Article(f"10.5555/one-journal.{n}") for n in range(1_000)], articles_per_journal=100)
        accepted = client.post("/v1/deposits?wait=30", data=split, headers=headers)
        assert accepted.status_code in (200, 202), accepted.get_json()
        assert accepted.get_json()["status"] != "refused"
        assert len(split) > 256 * 1024  # more than one item's limit in all
    finally:
        limited.db.engine.dispose()
