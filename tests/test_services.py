"""The composition root's process settings (agency.services)."""

from __future__ import annotations

import gc
from dataclasses import dataclass

import pytest

from agency.services import FULL_COLLECTION_AFTER, settle_startup_heap


@pytest.fixture
def collector_restored():
    """Whatever a test does to the collector, the next test starts with it as it was."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@dataclass(frozen=True)
class Held:
    """An object the collector tracks, as a batch's records are."""

    seq: int
    doi: str


def full_collections_while_holding(objects: int) -> int:
    """How many full collections start while ``objects`` small containers are made and kept, as a large
    batch's records are (each with some short-lived work beside it)."""
    started = []

    def count(phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 2:
            started.append(1)

    held = []
    gc.callbacks.append(count)
    try:
        for number in range(objects):
            held.append(Held(number, f"10.5555/{number}"))
            Held(-number, "")  # made and dropped, as a record's work leaves things behind
    finally:
        gc.callbacks.remove(count)
    return len(started)


def test_a_batch_sized_heap_sets_off_at_most_one_full_collection(collector_restored):
    settle_startup_heap()
    assert full_collections_while_holding(300_000) <= 1


def test_old_cyclic_garbage_is_still_freed_without_an_explicit_collection(collector_restored):
    """Cycles that outlived the young collections are freed by a full collection within the stated
    allocations (FULL_COLLECTION_AFTER middle collections), not kept for the life of the process."""
    settle_startup_heap()
    freed = []

    class Node:
        def __del__(self) -> None:
            freed.append(1)

    nodes = []
    for _ in range(100):
        node = Node()
        node.self = node  # a cycle: only the collector frees it
        nodes.append(node)
    full_collections_while_holding(10_000)  # old enough to sit in the oldest generation
    del node, nodes
    young, middle, _old = gc.get_threshold()
    full_collections_while_holding(2 * young * middle * FULL_COLLECTION_AFTER)
    assert len(freed) == 100
