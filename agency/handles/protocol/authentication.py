"""Challenge-response (RFC 3652 section 3.5): challenges issued and HS_SECKEY answers checked.

A challenge remembers the request it guards, so the answer, which CNRI's
client sends on a new TCP connection with the challenge's session id, is
checked against exactly what was asked. Challenges are single-use, expire,
and are bounded in number; they live in the database, so several server
processes (or machines) can share one port and address. Two answer schemes are accepted, as current
clients send them: ``0x02 || SHA1(key || nonce || digest || key)`` (protocol
2.1 to 2.6) and ``0x22 || salt || iterations || key bits ||
HMAC-SHA1(PBKDF2-HMAC-SHA1(key, salt, iterations), nonce || digest)`` (2.7 and up).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import delete, func, select

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


class ChallengeLimit(Exception):
    """Too many open challenges: the server is busy."""


class Challenges:
    """Open challenges by session id, in the database (any server process may take the answer):
    single-use, expiring after ``lifetime`` seconds, at most ``capacity`` open at once."""

    def __init__(self, db, max_message_bytes: int, lifetime: float = 60.0, capacity: int = 10_000) -> None:
        self.db = db
        self.max_message_bytes = max_message_bytes
        self.lifetime = lifetime
        self.capacity = capacity

    def issue(self, request) -> Challenge:
        from agency.models import HandleChallenge

        now = time.time()
        nonce = os.urandom(16)
        raw = request.envelope.encode() + request.payload
        with self.db.transaction() as session:
            session.execute(delete(HandleChallenge).where(HandleChallenge.issued < now - self.lifetime))
            if session.scalar(select(func.count()).select_from(HandleChallenge)) >= self.capacity:
                raise ChallengeLimit(f"{self.capacity} challenges are open")
            while True:
                session_id = secrets.randbits(31)
                if session_id and session.get(HandleChallenge, session_id) is None:
                    break
            session.add(HandleChallenge(session_id=session_id, nonce=nonce, request=raw, issued=now))
        return Challenge(session_id, nonce, request.digest()[1:], request, now)

    def take(self, session_id: int) -> Challenge | None:
        """The open challenge for ``session_id``, removed (an answer is accepted once), or None."""
        from agency.handles.protocol import messages as m
        from agency.models import HandleChallenge

        table = HandleChallenge.__table__
        with self.db.transaction() as session:
            row = session.execute(delete(table).where(table.c.session_id == session_id)
                                  .returning(table.c.nonce, table.c.request, table.c.issued)).first()
        if row is None or time.time() - row.issued > self.lifetime:
            return None
        raw = bytes(row.request)
        envelope = m.Envelope.decode(raw)
        request = m.parse_message(envelope, raw[m.ENVELOPE_SIZE:], self.max_message_bytes)
        return Challenge(session_id, bytes(row.nonce), request.digest()[1:], request, row.issued)


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
