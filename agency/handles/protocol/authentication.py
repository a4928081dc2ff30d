"""HS_SECKEY challenge-response (RFC 3652 section 3.5): challenges issued, answers checked, failures throttled.

A challenge remembers the request it guards, so the answer, which CNRI's
client sends on a new TCP connection with the challenge's session id, is
checked against exactly what was asked. Challenges are single-use, expire,
and are bounded in number. Two answer schemes are accepted, as current
clients send them: ``0x02 || SHA1(key || nonce || digest || key)`` (protocol
2.1 to 2.6) and ``0x22 || salt || iterations || key bits ||
HMAC-SHA1(PBKDF2-HMAC-SHA1(key, salt, iterations), nonce || digest)`` (2.7 and up).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from agency.handles.values import Reader, ValueFormatError

SCHEME_MD5, SCHEME_SHA1, SCHEME_PBKDF2 = 0x01, 0x02, 0x22
MAX_PBKDF2_ITERATIONS = 100_000  # CNRI clients use 10,000; more would let an answer cost us seconds of CPU
MAX_KEY_BITS = 1024


@dataclass(frozen=True)
class Challenge:
    session_id: int
    nonce: bytes
    request_digest: bytes  # the hash alone, without its type octet
    request: object  # the guarded request (a messages.Message)
    issued: float


class Challenges:
    """Open challenges by session id: single-use, expiring after ``lifetime`` seconds, at most ``capacity``."""

    def __init__(self, lifetime: float = 60.0, capacity: int = 10_000) -> None:
        self.lifetime = lifetime
        self.capacity = capacity
        self._open: OrderedDict[int, Challenge] = OrderedDict()
        self._lock = threading.Lock()

    def issue(self, request, request_digest: bytes) -> Challenge:
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            while len(self._open) >= self.capacity:
                self._open.popitem(last=False)
            session_id = 0
            while session_id == 0 or session_id in self._open:
                session_id = secrets.randbits(31)
            challenge = Challenge(session_id, os.urandom(16), request_digest, request, now)
            self._open[session_id] = challenge
        return challenge

    def take(self, session_id: int) -> Challenge | None:
        """The open challenge for ``session_id``, removed (an answer is accepted once), or None."""
        with self._lock:
            self._expire(time.monotonic())
            return self._open.pop(session_id, None)

    def _expire(self, now: float) -> None:
        while self._open:
            first = next(iter(self._open.values()))
            if now - first.issued <= self.lifetime:
                break
            self._open.popitem(last=False)


class AnswerError(ValueError):
    """An answer that is malformed or uses parameters we refuse."""


def answer_matches(key: bytes, nonce: bytes, request_digest: bytes, answer: bytes) -> bool:
    """Whether ``answer`` proves knowledge of ``key`` for this nonce and request (raises AnswerError)."""
    if not answer:
        raise AnswerError("empty challenge answer")
    scheme, rest = answer[0], answer[1:]
    signed = nonce + request_digest
    if scheme == SCHEME_SHA1:
        return hmac.compare_digest(rest, hashlib.sha1(key + signed + key).digest())
    if scheme == SCHEME_MD5:
        return hmac.compare_digest(rest, hashlib.md5(key + signed + key).digest())
    if scheme != SCHEME_PBKDF2:
        raise AnswerError(f"unknown answer scheme 0x{scheme:02x}")
    try:
        reader = Reader(rest)
        salt = reader.blob(256, "salt")
        iterations, key_bits = reader.i32(), reader.i32()
        mac = reader.blob(64, "mac")
        reader.finish("challenge answer")
    except ValueFormatError as exc:
        raise AnswerError(str(exc)) from None
    if not 1 <= iterations <= MAX_PBKDF2_ITERATIONS or not 8 <= key_bits <= MAX_KEY_BITS or key_bits % 8:
        raise AnswerError(f"PBKDF2 parameters refused: {iterations} iterations, {key_bits} key bits")
    derived = hashlib.pbkdf2_hmac("sha1", key, salt, iterations, key_bits // 8)
    return hmac.compare_digest(mac, hmac.new(derived, signed, hashlib.sha1).digest())


class FailureLimiter:
    """Wrong secrets per client address: after ``allowed`` failures within ``window`` seconds, answers from that
    address are refused unchecked until the window has passed. Remembers at most ``capacity`` addresses
    (the oldest forgotten first), so a spray of addresses costs bounded memory."""

    def __init__(self, allowed: int = 5, window: float = 300.0, capacity: int = 10_000) -> None:
        self.allowed, self.window, self.capacity = allowed, window, capacity
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> float:
        """Seconds until ``address`` may try again (0 when it may now)."""
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get(address, []) if now - t < self.window]
            if len(recent) < self.allowed:
                return 0.0
            return self.window - (now - recent[-self.allowed])

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.pop(address, []) if now - t < self.window][-self.allowed:]
            self._failures[address] = recent + [now]
            while len(self._failures) > self.capacity:
                self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)
