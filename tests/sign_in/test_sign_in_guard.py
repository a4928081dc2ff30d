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


def test_checks_in_flight_count_so_concurrent_guessers_try_at_most_the_limit():
    """16 threads guessing at once, each check slow: no more than the limit are ever tried, however
    they interleave (without the in-flight count, all 16 pass ``check`` before any failure is recorded)."""
    g = SignInGuard(SignInLimits(failures_per_login=10, failures_per_address=1000, window_seconds=60))
    tried, refused, lock, start = [0], [0], threading.Lock(), threading.Barrier(16)

    def guess(n: int) -> None:
        start.wait()
        for _ in range(20):
            try:
                with g.attempt("alice", f"10.0.0.{n}") as outcome:
                    with lock:
                        tried[0] += 1
                    time.sleep(0.01)  # the password hash
                    outcome.succeeded = False
            except TooManyFailures as exc:
                assert exc.retry_after >= 1
                with lock:
                    refused[0] += 1

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tried[0] == 10 and refused[0] == 16 * 20 - 10
    assert g._in_flight == {}  # every reservation was turned into its outcome


def test_an_attempt_without_an_outcome_counts_as_nothing(clock):
    g = guard(clock)
    for _ in range(10):  # e.g. every hashing slot was busy (503): no password was tried
        with g.attempt("alice", "10.0.0.1"):
            pass
    with g.attempt("alice", "10.0.0.1") as outcome:
        outcome.succeeded = True
    with g.attempt("alice", "10.0.0.1") as outcome:  # failures after a success from this address
        outcome.succeeded = False
    g.check("alice", "10.0.0.1")


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
