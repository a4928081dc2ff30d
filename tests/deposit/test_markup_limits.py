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
