"""Resolution answers kept in memory while the database is unchanged.

A resolution reads one handle's rows (about 13 µs on SQLite, most of an
answer's cost, and as much as a bare server's whole round trip). Most
resolutions ask again for what was asked before, and nothing changed since.
So the answer body is kept, and given again as long as the database has seen
no commit at all since it was read: the check is SQLite's ``PRAGMA
data_version`` (about 4 µs), which changes when any other connection, in
this process or another, commits. The connection that asks it never writes,
so every commit counts, and a write committed anywhere is seen by the very
next resolution in every handle-server process.

On PostgreSQL no check is as cheap as it would need to be (every candidate,
``pg_current_wal_lsn()`` or a change counter, is a round trip like the
query it would spare, and LISTEN/NOTIFY arrives after the commit returns, so
a resolution could still answer from before a write), so there is no cache
there: ``change_marker`` gives None and every answer is read.

Only what the database alone decides is kept: the response code and body of
an unauthenticated resolution (public values only, or not found). Envelope
and header (request and session ids, version, expiry, request digest) are
made for each request. The cache is bounded in entries and in octets; the
oldest-used entries go first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Protocol

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from agency.db import close_with_engine

ENTRY_OVERHEAD = 200  # octets a kept entry costs beyond its key and body (dict slot, tuple, bytes headers)


class ChangeMarker(Protocol):
    def current(self) -> int:
        """A number that differs from every earlier one once any commit has happened since it was taken."""


class SqliteChangeMarker:
    """``PRAGMA data_version`` on a connection of its own, which never writes (so every commit changes it).

    One connection for all threads: its numbers are comparable only with its own.
    A failed read reopens the connection and moves to a new range of numbers, so
    numbers taken before can never come back."""

    STATEMENT = "PRAGMA data_version"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dbapi_error = engine.dialect.loaded_dbapi.Error
        self._connection = None
        self._cursor = None
        self._epoch = 0
        self._lock = threading.Lock()
        close_with_engine(engine, self.close)

    def current(self) -> int:
        with self._lock:
            try:
                return self._read()
            except self.dbapi_error:
                self._close()  # a broken connection: once more on a new one
            try:
                return self._read()
            except self.dbapi_error as exc:
                self._close()
                raise DBAPIError.instance(self.STATEMENT, (), exc, self.dbapi_error) from exc

    def _read(self) -> int:
        if self._cursor is None:
            self._open()
        return (self._epoch << 40) + self._cursor.execute(self.STATEMENT).fetchone()[0]

    def _open(self) -> None:
        pooled = self.engine.raw_connection()
        pooled.detach()
        self._connection = pooled.dbapi_connection
        self._connection.isolation_level = None  # autocommit: each PRAGMA reads the latest state
        self._cursor = self._connection.cursor()
        self._epoch += 1

    def _close(self) -> None:
        connection, self._connection, self._cursor = self._connection, None, None
        if connection is not None:
            try:
                connection.close()
            except self.dbapi_error:
                pass

    def close(self) -> None:
        with self._lock:
            self._close()


def change_marker(engine: Engine) -> ChangeMarker | None:
    """The cheap change check for this database, or None where there is none (PostgreSQL, in-memory SQLite)."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database or ""
    if database in ("", ":memory:") or "mode=memory" in database:
        return None  # every connection would have a database of its own
    return SqliteChangeMarker(engine)


class AnswerCache:
    """Answers (response code, body) by request body, valid while ``marker`` stays the same.

    ``lookup`` reads the marker first and gives it back with what it found; ``keep``
    stores an answer read after that only if the marker has not moved since, so an
    answer read across a commit is never kept as current."""

    def __init__(self, marker: ChangeMarker, max_entries: int, max_bytes: int) -> None:
        self.marker = marker
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, tuple[int, bytes]] = OrderedDict()
        self._bytes = 0
        self._version: int | None = None
        self._lock = threading.Lock()

    def lookup(self, key: bytes) -> tuple[tuple[int, bytes] | None, int]:
        """The kept answer for ``key`` (None if none is valid) and the marker it was checked against."""
        with self._lock:
            version = self._checked()
            return self._get(key), version

    def check(self) -> int:
        """Read the marker now (dropping every answer if it moved) and give it: from then on, ``get`` answers for
        requests received before this call."""
        with self._lock:
            return self._checked()

    def get(self, key: bytes) -> tuple[int, bytes] | None:
        """The kept answer for ``key``, for a request received before the last ``check`` or ``lookup``.

        Every marker reading is taken under the lock and replaces the last one, so what is kept is valid as of
        the latest reading, which is no older than the caller's: the answer reflects the store at some moment
        after the request arrived."""
        with self._lock:
            return self._get(key)

    def _checked(self) -> int:
        version = self.marker.current()
        if version != self._version:
            self._entries.clear()
            self._bytes = 0
            self._version = version
        return version

    def _get(self, key: bytes) -> tuple[int, bytes] | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def keep(self, key: bytes, version: int, answer: tuple[int, bytes]) -> None:
        """Keep ``answer``, read after ``lookup`` gave ``version``, unless a commit was seen since."""
        size = len(key) + len(answer[1]) + ENTRY_OVERHEAD
        if size > self.max_bytes or self.max_entries < 1:
            return
        with self._lock:
            if version != self._version:
                return
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(key) + len(old[1]) + ENTRY_OVERHEAD
            self._entries[key] = answer
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                dropped_key, dropped = self._entries.popitem(last=False)
                self._bytes -= len(dropped_key) + len(dropped[1]) + ENTRY_OVERHEAD

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """Octets the kept entries are counted at (keys, bodies and ``ENTRY_OVERHEAD`` each)."""
        return self._bytes
