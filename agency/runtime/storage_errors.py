"""Telling "the disk is full" apart from other failures, whoever raised it.

The file system says ENOSPC (or EDQUOT over a quota); SQLite says "database or
disk is full" (SQLITE_FULL); PostgreSQL answers SQLSTATE 53100 (disk_full) or
53200 (out_of_memory is not space: not counted). Intake answers these with 507
instead of a generic 500, and the worker backs off instead of using up a
submission's attempts: the batch is fine, the machine is not.
"""

from __future__ import annotations

import errno

OUT_OF_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
OUT_OF_SPACE_SQLSTATES = frozenset({"53100"})
OUT_OF_SPACE_MESSAGE = "The service is out of storage space"


def is_out_of_space(exc: BaseException) -> bool:
    """True when ``exc`` (or what it wraps) says the disk or the database's storage is full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in OUT_OF_SPACE_ERRNOS:
            return True
        if getattr(current, "sqlstate", None) in OUT_OF_SPACE_SQLSTATES:  # psycopg
            return True
        if getattr(current, "sqlite_errorname", None) == "SQLITE_FULL" or "database or disk is full" in str(current):
            return True
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False


def describe_failure(exc: BaseException) -> str:
    """A reason fit to show the registrant: what went wrong, without server paths or tracebacks."""
    if is_out_of_space(exc):
        return OUT_OF_SPACE_MESSAGE + "; processing will resume when space is freed."
    if isinstance(exc, FileNotFoundError):
        return "The received file is missing from the service's storage."
    if isinstance(exc, PermissionError):
        return "The received file cannot be read (permission denied)."
    if isinstance(exc, OSError):
        return f"The received file cannot be read ({exc.strerror or type(exc).__name__})."
    text = str(exc).splitlines()[0][:300] if str(exc) else ""
    return f"Processing failed: {type(exc).__name__}" + (f": {text}" if text else "")
