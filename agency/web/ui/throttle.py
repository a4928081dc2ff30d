"""Failed sign-ins counted per login and per address, in memory: too many and sign-in pauses.

A small limiter of its own because the API's (issue 10) is not on main yet; it
counts failures only, in a sliding window, and forgets keys whose window ran out,
so its memory is bounded by the failures of one window (capped at MAX_KEYS).
"""

from __future__ import annotations

import threading
import time
from collections import deque

MAX_KEYS = 100_000


class SignInThrottle:
    def __init__(self, attempts: int, window_seconds: int) -> None:
        self.attempts = attempts
        self.window = window_seconds
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, *keys: str) -> int:
        """Seconds until any of these keys may try again (0: now)."""
        now = time.monotonic()
        wait = 0.0
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if len(times) >= self.attempts:
                    wait = max(wait, times[0] + self.window - now)
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) >= MAX_KEYS:
                self._failures.clear()
            for key in keys:
                self._recent(key, now).append(now)

    def succeeded(self, login_key: str) -> None:
        with self._lock:
            self._failures.pop(login_key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times
