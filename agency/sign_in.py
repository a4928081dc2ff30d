"""Sign-in throttling: failed passwords limited per login and per client address, and a
bounded number of password hashes running at once.

Each Argon2 check costs a large fraction of a second and tens of MiB, on purpose.
Without limits, a few clients guessing passwords take every request thread and
every other request (resolution included) waits behind them. So:

- ``SignInGuard.check(login, address)`` before the password is checked raises
  ``TooManyFailures`` (carrying ``retry_after`` seconds, for 429 + ``Retry-After``)
  once a login or an address has failed too often within the window;
- ``failed`` / ``succeeded`` after the check record the outcome (a success lets
  that address past the login's limit for a window, so a registrant is not locked
  out by someone else guessing at their login);
- ``attempt(login, address)`` does all three around one password check and counts
  the checks in flight against the limits as if they had failed: many clients
  guessing at once cannot all pass ``check`` before the first failure is recorded,
  so at most the limit of passwords is ever tried (hashed) per window;
- ``HashingSlots`` bounds the password hashes in progress: a check that cannot get
  a slot within ``wait_seconds`` raises ``HashingBusy`` (503 + ``Retry-After``),
  so hashing can never occupy more than ``slots`` threads.

Counters live in this process's memory, bounded in size; several web processes
each keep their own (the effective limit is then per process). The client address
is whatever the caller passes (the socket peer: behind a proxy, set it from the
proxy's header before calling).

Knows no web framework and imports nothing from agency: the web interface, the
Handle protocol server and any other sign-in path use the same guard.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")


class SignInRefused(Exception):
    """A sign-in not attempted; ``status`` and ``retry_after`` say how to answer."""

    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = max(1, retry_after)


class TooManyFailures(SignInRefused):
    """Too many wrong passwords for this login or from this address; try after ``retry_after`` s."""

    status = 429


class HashingBusy(SignInRefused):
    """Every password-hash slot is taken; try again shortly."""

    status = 503


@dataclass(frozen=True)
class SignInLimits:
    failures_per_login: int = 10
    failures_per_address: int = 30
    window_seconds: float = 300.0
    tracked_keys: int = 100_000


IN_FLIGHT_RETRY_SECONDS = 1.0


class _FailureWindows:
    """Recent failure times per key, oldest keys dropped beyond ``tracked_keys`` (memory is bounded)."""

    def __init__(self, tracked_keys: int) -> None:
        self._times: OrderedDict[str, deque[float]] = OrderedDict()
        self._tracked_keys = tracked_keys

    def blocked_for(self, key: str, limit: int, window: float, now: float, in_flight: int = 0) -> float:
        """Seconds until ``key`` may try again (0: it may now); ``in_flight`` checks count as failures."""
        if in_flight >= limit:
            return IN_FLIGHT_RETRY_SECONDS  # their outcomes are due within a password check
        times = self._times.get(key)
        if times is None:
            return 0.0
        while times and times[0] <= now - window:
            times.popleft()
        if not times:
            del self._times[key]
            return 0.0
        if len(times) + in_flight < limit:
            return 0.0
        return times[-(limit - in_flight)] + window - now

    def add(self, key: str, limit: int, now: float) -> None:
        times = self._times.get(key)
        if times is None:
            times = self._times[key] = deque(maxlen=limit)
            while len(self._times) > self._tracked_keys:
                self._times.popitem(last=False)
        else:
            self._times.move_to_end(key)
        times.append(now)


@dataclass
class SignInOutcome:
    """What the password check found: set ``succeeded`` inside ``SignInGuard.attempt``."""

    succeeded: bool | None = None


class SignInGuard:
    """Throttles failed sign-ins per login and per client address (see the module docstring)."""

    def __init__(self, limits: SignInLimits = SignInLimits(), clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._failures = _FailureWindows(limits.tracked_keys)
        self._trusted: OrderedDict[tuple[str, str], float] = OrderedDict()  # (login, address) -> until
        # Password checks running now, per "l:login" and "a:address": at most one per request thread.
        self._in_flight: dict[str, int] = {}
        self._lock = threading.Lock()

    def check(self, login: str, address: str) -> None:
        """Raise ``TooManyFailures`` if this sign-in must not even be tried now."""
        with self._lock:
            self._refuse_if_blocked(_login_key(login), address, self._clock())

    @contextmanager
    def attempt(self, login: str, address: str) -> Iterator[SignInOutcome]:
        """One password check, counted against the limits while it runs (see the module docstring).

        Raises ``TooManyFailures`` before the check; the caller sets ``outcome.succeeded``. An
        attempt left without an outcome (the check itself refused, say 503) counts as nothing."""
        keys = ("l:" + _login_key(login), "a:" + address)
        with self._lock:
            self._refuse_if_blocked(keys[0][2:], address, self._clock())
            for key in keys:
                self._in_flight[key] = self._in_flight.get(key, 0) + 1
        outcome = SignInOutcome()
        try:
            yield outcome
        finally:
            with self._lock:  # the reservation becomes the outcome at once: no window in between
                for key in keys:
                    left = self._in_flight.pop(key) - 1
                    if left:
                        self._in_flight[key] = left
                if outcome.succeeded is False:
                    self._record_failure(login, address)
                elif outcome.succeeded:
                    self._trust(login, address)

    def _refuse_if_blocked(self, login_key: str, address: str, now: float) -> None:
        limits = self.limits
        wait = self._failures.blocked_for("a:" + address, limits.failures_per_address, limits.window_seconds,
                                          now, self._in_flight.get("a:" + address, 0))
        if wait <= 0 and not self._is_trusted(login_key, address, now):
            wait = self._failures.blocked_for("l:" + login_key, limits.failures_per_login, limits.window_seconds,
                                              now, self._in_flight.get("l:" + login_key, 0))
        if wait > 0:
            raise TooManyFailures(
                f"Too many failed sign-ins for this login or from this address (at most "
                f"{limits.failures_per_login} per login and {limits.failures_per_address} per address in "
                f"{limits.window_seconds:.0f} s); try again in {math.ceil(wait)} s.", math.ceil(wait))

    def failed(self, login: str, address: str) -> None:
        with self._lock:
            self._record_failure(login, address)

    def _record_failure(self, login: str, address: str) -> None:
        limits, now = self.limits, self._clock()
        self._failures.add("l:" + _login_key(login), limits.failures_per_login, now)
        self._failures.add("a:" + address, limits.failures_per_address, now)

    def succeeded(self, login: str, address: str) -> None:
        """This address may sign in to this login despite others' guesses at it, for a window.

        The login's failures are not cleared: a registrant polling every few seconds would
        otherwise reset the count for whoever is guessing at their password elsewhere."""
        with self._lock:
            self._trust(login, address)

    def _trust(self, login: str, address: str) -> None:
        login_key, now = _login_key(login), self._clock()
        self._trusted[(login_key, address)] = now + self.limits.window_seconds
        self._trusted.move_to_end((login_key, address))
        while len(self._trusted) > self.limits.tracked_keys:
            self._trusted.popitem(last=False)

    def _is_trusted(self, login_key: str, address: str, now: float) -> bool:
        until = self._trusted.get((login_key, address))
        return until is not None and until > now


def _login_key(login: str) -> str:
    return login.strip().lower()[:256]


class HashingSlots:
    """At most ``slots`` password hashes at once, at low CPU priority, and at most ``waiting``
    callers queued for one.

    Hashes run on ``slots`` threads of their own whose scheduling priority is lowered by
    ``niceness`` (Linux, where priority is per thread and the hash's own worker threads
    inherit it): other request threads (resolution above all) get more of the CPU. Keep it
    modest: on a machine busy with other work a very nice thread starves, and a sign-in
    with the right password waits for it. A caller waits at most ``wait_seconds`` for a slot; beyond the queue it is
    refused at once, so sign-ins never hold more than ``slots + waiting`` request threads
    however many clients guess at the same time.
    """

    def __init__(self, slots: int = 1, waiting: int = 2, wait_seconds: float = 2.0, niceness: int = 4) -> None:
        if slots < 1:
            raise ValueError("at least one hashing slot")
        self.slots = slots
        self.waiting = max(0, waiting)
        self.wait_seconds = wait_seconds
        self._semaphore = threading.BoundedSemaphore(slots)
        self._admitted = threading.BoundedSemaphore(slots + self.waiting)
        self._pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="agency-hash",
                                        initializer=_lower_this_threads_priority, initargs=(niceness,))

    def run(self, hash_function: Callable[..., T], *args) -> T:
        """``hash_function(*args)`` on a hashing thread; raises ``HashingBusy`` when no slot is to be had."""
        with self.slot():
            return self._pool.submit(hash_function, *args).result()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the slots (what ``run`` does around the hash)."""
        if not self._admitted.acquire(blocking=False):
            raise self._busy()
        try:
            if not self._semaphore.acquire(timeout=self.wait_seconds):
                raise self._busy()
            try:
                yield
            finally:
                self._semaphore.release()
        finally:
            self._admitted.release()

    def _busy(self) -> HashingBusy:
        return HashingBusy(f"The service is busy checking other sign-ins (at most {self.slots} at once); "
                           "try again in a few seconds.", retry_after=max(1, math.ceil(self.wait_seconds)))


def _lower_this_threads_priority(niceness: int) -> None:
    """Lower the calling thread's CPU priority (Linux: per thread; elsewhere a no-op)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError):
        pass
