"""The sign-in guard: failures per login and per address within a window, hashing slots."""

from __future__ import annotations

import threading
import time

import pytest

from agency.sign_in import HashingBusy, HashingSlots, SignInGuard, SignInLimits, TooManyFailures


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def guard(clock, **limits) -> SignInGuard:
    return SignInGuard(SignInLimits(**{"failures_per_login": 3, "failures_per_address": 5,
                                       "window_seconds": 60, **limits}), clock=clock)


def test_a_login_is_refused_after_its_failures_until_the_window_passes(clock):
    g = guard(clock)
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):  # spread over addresses: the login limit counts
        g.check("alice", address)
        g.failed("alice", address)
    clock.now += 10
    with pytest.raises(TooManyFailures) as refused:
        g.check("ALICE", "10.0.0.9")  # logins compare without case
    assert refused.value.retry_after == 50 and refused.value.status == 429
    g.check("bob", "10.0.0.9")  # other logins are not affected
    clock.now += 50
    g.check("alice", "10.0.0.9")


def test_an_address_is_refused_after_its_failures_whatever_the_login(clock):
    g = guard(clock)
    for n in range(5):
        g.failed(f"user{n}", "10.0.0.1")
    with pytest.raises(TooManyFailures, match="try again in 60 s"):
        g.check("someone-else", "10.0.0.1")
    g.check("someone-else", "10.0.0.2")


def test_an_address_that_signed_in_is_not_locked_out_by_guesses_elsewhere(clock):
    g = guard(clock)
    g.check("alice", "192.0.2.7")
    g.succeeded("alice", "192.0.2.7")
    for n in range(3):
        g.failed("alice", f"203.0.113.{n}")
    with pytest.raises(TooManyFailures):
        g.check("alice", "203.0.113.50")
    g.check("alice", "192.0.2.7")  # the registrant's own system keeps working
    clock.now += 61
    for n in range(3):
        g.failed("alice", f"203.0.113.{n}")
    with pytest.raises(TooManyFailures):
        g.check("alice", "192.0.2.7")  # trust expired with the window


def test_tracked_keys_are_bounded(clock):
    g = guard(clock, tracked_keys=100)
    for n in range(10_000):
        g.failed(f"user{n}", f"10.{n // 256 % 256}.{n % 256}.1")
    assert len(g._failures._times) <= 100


def test_hashing_slots_bound_concurrent_hashes_and_refuse_beyond_the_queue():
    slots = HashingSlots(slots=2, waiting=1, wait_seconds=0.3)
    inside, peak, release = [0], [0], threading.Event()
    lock = threading.Lock()
    outcomes: list[str] = []

    def hash_once() -> None:
        try:
            with slots.slot():
                with lock:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                release.wait(2)
                with lock:
                    inside[0] -= 1
            outcomes.append("hashed")
        except HashingBusy as busy:
            assert busy.status == 503 and busy.retry_after >= 1
            outcomes.append("busy")

    threads = [threading.Thread(target=hash_once) for _ in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(0.6)  # the queued one gave up after 0.3 s; three were refused at once
    release.set()
    for thread in threads:
        thread.join()
    assert peak[0] == 2
    assert sorted(outcomes) == ["busy"] * 4 + ["hashed"] * 2
