"""What the deposit worker keeps in memory for speed stays bounded."""

from __future__ import annotations

from agency.deposit.runner import _drop_oldest


def test_oldest_lists_go_first_until_the_total_fits():
    lists = {1: [0] * 40, 2: [0] * 30, 3: [0] * 50}
    _drop_oldest(lists, 85)
    assert list(lists) == [2, 3]  # 120 items; 80 once the oldest is gone
    _drop_oldest(lists, 60)
    assert list(lists) == [3]
    lists = {1: [0] * 40, 2: [0] * 30}
    _drop_oldest(lists, 70)
    assert list(lists) == [1, 2]


def test_the_newest_is_kept_even_alone_over_the_limit():
    lists = {7: [0] * 10, 8: [0] * 500}
    _drop_oldest(lists, 100)
    assert list(lists) == [8]
